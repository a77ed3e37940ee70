import { render } from "solid-js/web";
import { App } from "./App";
import { ClientsProvider } from "./clients";
import { createAppTransport } from "./transport";
import "./styles.css";

const root = document.getElementById("root");
if (root) {
  render(
    () => (
      <ClientsProvider transport={createAppTransport()}>
        <App />
      </ClientsProvider>
    ),
    root,
  );
}
