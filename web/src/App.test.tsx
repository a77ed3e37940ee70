import { fireEvent, render, screen, within } from "@solidjs/testing-library";
import { afterEach, describe, expect, it } from "vitest";
import { App } from "./App";
import { withApi } from "./testing";

afterEach(() => {
  window.location.hash = "";
});

describe("the app", () => {
  it("opens on the Classify page and moves to the Shadow page through the navigation", async () => {
    render(withApi({}, () => <App />));
    const nav = within(screen.getByRole("navigation", { name: "Pages" }));
    expect(screen.getByRole("heading", { level: 1, name: "Classify a message" })).toBeInTheDocument();
    expect(nav.getByRole("link", { name: "Classify" })).toHaveAttribute("aria-current", "page");
    fireEvent.click(nav.getByRole("link", { name: "Shadow" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Shadow comparison" })).toBeInTheDocument();
    expect(nav.getByRole("link", { name: "Shadow" })).toHaveAttribute("aria-current", "page");
  });
});
