import { type Accessor, Match, Show, Switch } from "solid-js";
import { MissingNotice, StatusLine, WindowSelect } from "./parts";
import { ReportView } from "./ReportView";
import { useShadowReport } from "./useShadowReport";

export interface CandidatePageProps {
  candidate: string;
  windowSeconds: Accessor<number>;
  onWindowChange: (seconds: number) => void;
  retryDelayMs?: (attempt: number) => number;
}

/**
 * One candidate's full report, live over WatchShadowReport{candidate}. An unknown candidate (NOT_FOUND, or a report
 * without a record of it) and a window without data are said plainly; it never shows made-up numbers.
 */
export function CandidatePage(props: CandidatePageProps) {
  const live = useShadowReport({
    windowSeconds: props.windowSeconds,
    candidate: () => props.candidate,
    retryDelayMs: props.retryDelayMs,
  });
  const status = live.status;
  const report = live.value;
  const hasData = () => (report()?.totals?.requestCount ?? 0n) > 0n;
  const noShadowRecords = () => (report()?.totals?.shadowRecordCount ?? 0n) === 0n;
  const missing = () => {
    const current = status();
    return current.kind === "missing" ? current : undefined;
  };

  return (
    <>
      <p class="breadcrumb">
        <a href="#/shadow" data-testid="all-candidates-link">
          ← All candidates
        </a>
      </p>
      <h1 id="shadow-heading">
        Shadow comparison: <span data-testid="candidate-name">{props.candidate}</span>
      </h1>
      <p class="lead">
        Every request the primary model answers is also sent to the candidate {props.candidate}. Both report
        their predictions, which are joined by request id — so the two models are compared request by request
        on real traffic.
      </p>
      <div class="toolbar">
        <WindowSelect seconds={props.windowSeconds()} onChange={props.onWindowChange} />
        <StatusLine status={status()} />
      </div>

      <Switch>
        <Match when={missing()}>{(current) => <MissingNotice why={current().why} />}</Match>
        <Match when={status().kind === "unknown-candidate"}>
          <UnknownCandidate candidate={props.candidate} />
        </Match>
        <Match when={report() !== undefined && !hasData()}>
          <div class="card notice" role="note">
            <h2>No comparison data yet</h2>
            <p>
              No predictions were reported in this window. Classify a few messages on the{" "}
              <a href="#/">Classify</a> page and the comparison appears here.
            </p>
          </div>
        </Match>
        <Match when={hasData() ? report() : undefined}>
          {(current) => (
            <>
              <Show when={noShadowRecords()}>
                <UnknownCandidate candidate={props.candidate} />
              </Show>
              <ReportView report={current()} />
            </>
          )}
        </Match>
      </Switch>
    </>
  );
}

function UnknownCandidate(props: { candidate: string }) {
  return (
    <div class="card notice" role="note" data-testid="unknown-candidate">
      <h2>No records from {props.candidate} in this window</h2>
      <p>
        No shadow model named <code>{props.candidate}</code> reported a prediction in this window: the name
        may be mistyped, or the candidate stopped or has not started yet. See{" "}
        <a href="#/shadow">all candidates</a>; this page keeps watching and updates by itself.
      </p>
    </div>
  );
}
