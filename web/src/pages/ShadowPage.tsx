import { createSignal, Show } from "solid-js";
import { CandidatePage } from "../shadow/CandidatePage";
import { CandidatesOverview } from "../shadow/CandidatesOverview";
import { DEFAULT_WINDOW_SECONDS } from "../shadow/parts";

export interface ShadowPageProps {
  /** The candidate whose full report to show (`#/shadow/<name>`); the overview of every candidate without one. */
  candidate?: string;
  /** Pause before reconnecting after the n-th failure in a row; tests shorten it. */
  retryDelayMs?: (attempt: number) => number;
  /** The pause between two ListCandidates calls on the overview; tests shorten it. */
  pollMs?: number;
}

/**
 * The shadow comparison: the overview of every candidate (`#/shadow`) and one candidate's live report
 * (`#/shadow/<name>`). The window chosen stays when moving between them.
 */
export function ShadowPage(props: ShadowPageProps) {
  const [windowSeconds, setWindowSeconds] = createSignal(DEFAULT_WINDOW_SECONDS);
  return (
    <section aria-labelledby="shadow-heading" class="page">
      <Show
        when={props.candidate}
        fallback={
          <CandidatesOverview
            windowSeconds={windowSeconds}
            onWindowChange={setWindowSeconds}
            pollMs={props.pollMs}
            retryDelayMs={props.retryDelayMs}
          />
        }
      >
        {(candidate) => (
          <CandidatePage
            candidate={candidate()}
            windowSeconds={windowSeconds}
            onWindowChange={setWindowSeconds}
            retryDelayMs={props.retryDelayMs}
          />
        )}
      </Show>
    </section>
  );
}
