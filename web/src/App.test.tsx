import { fireEvent, render, screen, within } from "@solidjs/testing-library";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App, routeOf } from "./App";
import { controlledStream, fullReport } from "./shadow/testing";
import { withApi } from "./testing";

const WAIT = { timeout: 4000, interval: 5 };

afterEach(() => {
  window.location.hash = "";
});

function twoCandidates() {
  const stream = controlledStream();
  const api = {
    metrics: {
      listCandidates: () => ({ candidates: [fullReport(30, "spam-tiny"), fullReport(40, "spam-v2")] }),
      watchShadowReport: stream.watch,
    },
  };
  return { stream, api };
}

function hashChange(hash: string) {
  window.location.hash = hash;
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

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

  it("goes from the overview to one candidate's report with its own URL, and back", async () => {
    const { stream, api } = twoCandidates();
    window.location.hash = "#/shadow";
    render(withApi(api, () => <App />));
    const card = await screen.findByRole("article", { name: "Candidate spam-v2" });
    fireEvent.click(within(card).getByRole("link", { name: "spam-v2" }));
    await vi.waitFor(() => expect(window.location.hash).toBe("#/shadow/spam-v2"), WAIT);
    expect(
      await screen.findByRole("heading", { level: 1, name: "Shadow comparison: spam-v2" }),
    ).toBeInTheDocument();
    await vi.waitFor(() => expect(stream.calls.at(-1)?.request.candidate).toBe("spam-v2"), WAIT);
    stream.push(fullReport(40));
    expect(await screen.findByRole("region", { name: /Verdict/ })).toBeInTheDocument();
    // The Shadow tab stays the current page on a candidate's report.
    const nav = within(screen.getByRole("navigation", { name: "Pages" }));
    expect(nav.getByRole("link", { name: "Shadow" })).toHaveAttribute("aria-current", "page");

    // The browser's back button: the overview again, and the candidate's stream closed.
    window.history.back();
    expect(await screen.findByRole("heading", { level: 1, name: "Shadow comparison" })).toBeInTheDocument();
    expect(window.location.hash).toBe("#/shadow");
    await vi.waitFor(() => expect(stream.calls.at(-1)?.signal.aborted).toBe(true), WAIT);
    expect(await screen.findByRole("article", { name: "Candidate spam-tiny" })).toBeInTheDocument();
  });

  it("opens a candidate's report straight from its URL (a deep link) and moves to another candidate", async () => {
    const { stream, api } = twoCandidates();
    window.location.hash = "#/shadow/spam-tiny";
    render(withApi(api, () => <App />));
    expect(
      await screen.findByRole("heading", { level: 1, name: "Shadow comparison: spam-tiny" }),
    ).toBeInTheDocument();
    await vi.waitFor(() => expect(stream.calls[0]?.request.candidate).toBe("spam-tiny"), WAIT);
    stream.push(fullReport(30, "spam-tiny"));
    expect(await screen.findByText(/of 30 pairs got the same label/)).toBeInTheDocument();

    hashChange("#/shadow/spam-v2");
    expect(
      await screen.findByRole("heading", { level: 1, name: "Shadow comparison: spam-v2" }),
    ).toBeInTheDocument();
    await vi.waitFor(() => expect(stream.calls[1]?.request.candidate).toBe("spam-v2"), WAIT);
    expect(stream.calls[0]?.signal.aborted).toBe(true);
    // spam-tiny's report is never shown under spam-v2's name.
    expect(screen.queryByText(/of 30 pairs got the same label/)).toBeNull();
  });

  it("keeps the chosen window when moving from the overview to a candidate", async () => {
    const { stream, api } = twoCandidates();
    window.location.hash = "#/shadow";
    render(withApi(api, () => <App />));
    await screen.findByRole("article", { name: "Candidate spam-v2" });
    fireEvent.change(screen.getByLabelText("Window"), { target: { value: String(15 * 60) } });
    hashChange("#/shadow/spam-v2");
    await vi.waitFor(() => expect(stream.calls[0]?.request.window?.seconds).toBe(900n), WAIT);
    expect(screen.getByLabelText("Window")).toHaveValue(String(15 * 60));
  });

  it("reads routes, decoding candidate names and surviving malformed ones", () => {
    expect(routeOf("")).toEqual({ page: "classify" });
    expect(routeOf("#/")).toEqual({ page: "classify" });
    expect(routeOf("#/shadowy")).toEqual({ page: "classify" });
    expect(routeOf("#/shadow")).toEqual({ page: "shadow" });
    expect(routeOf("#/shadow/")).toEqual({ page: "shadow" });
    expect(routeOf("#/shadow/spam-v2")).toEqual({ page: "shadow", candidate: "spam-v2" });
    expect(routeOf("#/shadow/spam-v2/")).toEqual({ page: "shadow", candidate: "spam-v2" });
    expect(routeOf(`#/shadow/${encodeURIComponent("a b/c")}`)).toEqual({
      page: "shadow",
      candidate: "a b/c",
    });
    expect(routeOf("#/shadow/%E0%A4%A")).toEqual({ page: "shadow", candidate: "%E0%A4%A" });
  });
});
