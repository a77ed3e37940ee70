import { createSignal, type JSX, Match, onCleanup, onMount, Switch } from "solid-js";
import { ClassifyPage } from "./pages/ClassifyPage";
import { ShadowPage } from "./pages/ShadowPage";

export type Route = { page: "classify" } | { page: "shadow"; candidate?: string };

/**
 * The route of a location hash: `#/shadow` is the overview of every candidate, `#/shadow/<name>` one candidate's
 * report (the name URL-encoded, see candidateHref), anything else the Classify page.
 */
export function routeOf(hash: string): Route {
  if (hash !== "#/shadow" && !hash.startsWith("#/shadow/")) {
    return { page: "classify" };
  }
  const encoded = hash.slice("#/shadow/".length).replace(/\/+$/, "");
  if (encoded === "") {
    return { page: "shadow" };
  }
  try {
    return { page: "shadow", candidate: decodeURIComponent(encoded) };
  } catch {
    // A malformed escape (a hand-edited URL): the text as typed is still the best guess of a name.
    return { page: "shadow", candidate: encoded };
  }
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
 * The app: two pages behind hash routes (#/, #/shadow and #/shadow/<candidate>), so that app-service serves one index.html and needs no
 * server-side routing.
 */
export function App() {
  const [route, setRoute] = createSignal<Route>(routeOf(window.location.hash));
  const candidate = () => {
    const current = route();
    return current.page === "shadow" ? current.candidate : undefined;
  };
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
          <NavLink href="#/" active={route().page === "classify"}>
            Classify
          </NavLink>
          <NavLink href="#/shadow" active={route().page === "shadow"}>
            Shadow
          </NavLink>
        </nav>
      </header>
      <main id="main" tabindex="-1">
        <Switch>
          <Match when={route().page === "classify"}>
            <ClassifyPage />
          </Match>
          <Match when={route().page === "shadow"}>
            <ShadowPage candidate={candidate()} />
          </Match>
        </Switch>
      </main>
    </>
  );
}
