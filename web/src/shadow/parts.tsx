import { For, type JSX, Show } from "solid-js";
import { time } from "../lib/format";
import type { LiveStatus } from "./live";

/** The windows a user can pick; the last hour by default. */
export const WINDOWS = [
  { label: "last 15 minutes", seconds: 15 * 60 },
  { label: "last hour", seconds: 60 * 60 },
  { label: "last 24 hours", seconds: 24 * 60 * 60 },
] as const;

export const DEFAULT_WINDOW_SECONDS: number = WINDOWS[1].seconds;

export function WindowSelect(props: { seconds: number; onChange: (seconds: number) => void }) {
  return (
    <>
      <label for="window">Window</label>
      <select
        id="window"
        value={String(props.seconds)}
        onChange={(event) => props.onChange(Number(event.currentTarget.value))}
      >
        <For each={WINDOWS}>{(option) => <option value={String(option.seconds)}>{option.label}</option>}</For>
      </select>
    </>
  );
}

export function StatusLine(props: { status: LiveStatus }) {
  const text = () => {
    const status = props.status;
    switch (status.kind) {
      case "connecting":
        return "Connecting…";
      case "live":
        return `Live · updated ${time(status.updated)}`;
      case "reconnecting":
        return `Reconnecting… (${status.problem})`;
      case "missing":
        return "No comparison service";
      case "unknown-candidate":
        return "Unknown candidate";
    }
  };
  return (
    <span class={`status status-${props.status.kind}`} role="status">
      {text()}
    </span>
  );
}

/** "No comparison data": the comparison service is missing (UNIMPLEMENTED) or unreachable. */
export function MissingNotice(props: { why: string }) {
  return (
    <div class="card notice" role="note">
      <h2>No comparison data</h2>
      <p>
        {props.why} There is nothing to compare until it does: predictions still work on the{" "}
        <a href="#/">Classify</a> page. This page keeps trying and updates by itself.
      </p>
    </div>
  );
}

/** One figure with its label (and a hint); `testId` marks the figure and, with "-value", its value alone. */
export function Stat(props: { label: string; value: string; hint?: string; testId?: string }) {
  return (
    <div class="stat" data-testid={props.testId}>
      <dt>{props.label}</dt>
      <dd data-testid={props.testId ? `${props.testId}-value` : undefined}>{props.value}</dd>
      <Show when={props.hint}>
        <dd class="muted small">{props.hint}</dd>
      </Show>
    </div>
  );
}

export function Section(props: { title: string; id: string; children: JSX.Element }) {
  return (
    <section class="card" aria-labelledby={props.id}>
      <h2 id={props.id}>{props.title}</h2>
      {props.children}
    </section>
  );
}

/** The hash route of one candidate's report; the name is URL-encoded, so any model name makes a working link. */
export function candidateHref(candidate: string): string {
  return `#/shadow/${encodeURIComponent(candidate)}`;
}
