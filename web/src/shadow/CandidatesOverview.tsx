import type { ShadowReport } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { type Accessor, For, Match, Show, Switch } from "solid-js";
import { count, percent } from "../lib/format";
import { accuracyOf } from "./AccuracySection";
import { modelsOf, p99Ratio } from "./LatencySection";
import { candidateHref, MissingNotice, Stat, StatusLine, WindowSelect } from "./parts";
import { useCandidates } from "./useShadowReport";
import { decisionWording } from "./wording";

export interface CandidatesOverviewProps {
  windowSeconds: Accessor<number>;
  onWindowChange: (seconds: number) => void;
  /** The pause between two ListCandidates calls (2 s); tests shorten it. */
  pollMs?: number;
  retryDelayMs?: (attempt: number) => number;
}

/**
 * Every candidate side by side (ListCandidates, polled): verdict, agreement with its interval, pairs, p99 latency
 * ratio and accuracy on feedback against the primary's. Each card links to the candidate's full report.
 */
export function CandidatesOverview(props: CandidatesOverviewProps) {
  const live = useCandidates({
    windowSeconds: props.windowSeconds,
    pollMs: props.pollMs,
    retryDelayMs: props.retryDelayMs,
  });
  const candidates = live.value;
  const missing = () => {
    const current = live.status();
    return current.kind === "missing" ? current : undefined;
  };
  const primaryModels = () => modelsOf(candidates()?.find((report) => report.primary)?.primary);

  return (
    <>
      <h1 id="shadow-heading">Shadow comparison</h1>
      <p class="lead">
        Every request the primary model answers is also sent to each candidate (shadow) model. All of them
        report their predictions, which are joined by request id — so each candidate is compared with the
        primary request by request on real traffic, with its own report and verdict.
      </p>
      <div class="toolbar">
        <WindowSelect seconds={props.windowSeconds()} onChange={props.onWindowChange} />
        <StatusLine status={live.status()} />
      </div>

      <Switch>
        <Match when={missing()}>{(current) => <MissingNotice why={current().why} />}</Match>
        <Match when={candidates()?.length === 0}>
          <div class="card notice" role="note" data-testid="no-candidates">
            <h2>No candidates yet</h2>
            <p>
              No shadow model reported a prediction in this window, so there is nothing to compare yet. Once a
              candidate runs next to the primary, classify a few messages on the <a href="#/">Classify</a>{" "}
              page and it appears here.
            </p>
          </div>
        </Match>
        <Match when={candidates()}>
          {(list) => (
            <>
              <p class="muted" data-testid="primary-models">
                Primary: {primaryModels()} · {count(list().length)}{" "}
                {list().length === 1 ? "candidate" : "candidates"}
              </p>
              <ul class="candidates" aria-label="Candidates">
                <For each={list()}>{(report) => <CandidateCard report={report} />}</For>
              </ul>
            </>
          )}
        </Match>
      </Switch>
    </>
  );
}

function CandidateCard(props: { report: ShadowReport }) {
  const name = () => props.report.candidate;
  const decision = () => decisionWording(props.report.verdict?.decision);
  const agreement = () => props.report.agreement;
  return (
    <li>
      <article
        class={`card candidate-card verdict ${decision().className}`}
        aria-label={`Candidate ${name() || "without a name"}`}
        data-testid="candidate-card"
        data-candidate={name()}
      >
        <h2>
          <Show when={name()} fallback={<span>(unnamed candidate)</span>}>
            <a href={candidateHref(name())}>{name()}</a>
          </Show>
        </h2>
        <p class="muted small">{modelsOf(props.report.shadow)}</p>
        <p class="candidate-verdict" data-testid="candidate-verdict">
          Verdict: <span class="decision">{decision().text}</span>
        </p>
        <dl class="stats">
          <Stat
            label="Agreement"
            testId="candidate-agreement"
            value={percent(agreement()?.rate ?? 0)}
            hint={`95 % interval ${percent(agreement()?.lowerBound ?? 0)} – ${percent(agreement()?.upperBound ?? 0)}`}
          />
          <Stat
            label="Pairs"
            testId="candidate-pairs"
            value={count(props.report.totals?.pairCount ?? 0n)}
            hint={`${count(props.report.totals?.judgedPairCount ?? 0n)} judged`}
          />
          <Stat label="p99 latency ratio" testId="candidate-latency-ratio" value={p99Ratio(props.report)} />
          <Stat
            label="Accuracy on feedback"
            testId="candidate-accuracy"
            value={accuracyOf(props.report.shadow)}
            hint={`primary ${accuracyOf(props.report.primary)}; ${count(
              props.report.shadow?.feedbackCount ?? 0n,
            )} and ${count(props.report.primary?.feedbackCount ?? 0n)} answers with feedback`}
          />
        </dl>
      </article>
    </li>
  );
}
