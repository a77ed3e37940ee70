import { createSignal, type JSX, Match, onCleanup, onMount, Switch } from "solid-js";
import { ClassifyPage } from "./pages/ClassifyPage";
import { ShadowPage } from "./pages/ShadowPage";

type Route = "classify" | "shadow";

function routeOf(hash: string): Route {
  return hash.startsWith("#/shadow") ? "shadow" : "classify";
}

function NavLink(props: { href: string; active: boolean; children: JSX.Element }) {
  return (
    <a
      href={props.href}
      class={props.active ? "nav-link active" : "nav-link"}
      aria-current={props.active ? "page" : undefined}
    >
      {props.children}
    </a>
  );
}

/**
 * The app: two pages behind hash routes (#/ and #/shadow), so that app-service serves one index.html and needs no
 * server-side routing.
 */
export function App() {
  const [route, setRoute] = createSignal<Route>(routeOf(window.location.hash));
  onMount(() => {
    const onHashChange = () => {
      setRoute(routeOf(window.location.hash));
      document.getElementById("main")?.focus();
    };
    window.addEventListener("hashchange", onHashChange);
    onCleanup(() => window.removeEventListener("hashchange", onHashChange));
  });
  return (
    <>
      <button type="button" class="skip-link" onClick={() => document.getElementById("main")?.focus()}>
        Skip to content
      </button>
      <header class="site-header">
        <span class="brand">Shadowmesh</span>
        <nav aria-label="Pages">
          <NavLink href="#/" active={route() === "classify"}>
            Classify
          </NavLink>
          <NavLink href="#/shadow" active={route() === "shadow"}>
            Shadow
          </NavLink>
        </nav>
      </header>
      <main id="main" tabindex="-1">
        <Switch>
          <Match when={route() === "classify"}>
            <ClassifyPage />
          </Match>
          <Match when={route() === "shadow"}>
            <ShadowPage />
          </Match>
        </Switch>
      </main>
    </>
  );
}
