import { create } from "@bufbuild/protobuf";
import { type Duration, DurationSchema, type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  CheckOutcome,
  Decision,
  Role,
  type RoleSummary,
  type ShadowReport,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { createEffect, createSignal, For, type JSX, onCleanup, Show } from "solid-js";
import { useClients } from "../clients";
import { AgreementChart } from "../components/AgreementChart";
import { type LatencyBucketView, LatencyChart } from "../components/LatencyChart";
import { isComparisonMissing } from "../lib/errors";
import { count, labelName, ms, percent, time } from "../lib/format";

type Status =
  | { kind: "connecting" }
  | { kind: "live"; updated: Date }
  | { kind: "reconnecting"; problem: string }
  | { kind: "missing"; why: string };

const WINDOWS = [
  { label: "last 15 minutes", seconds: 15 * 60 },
  { label: "last hour", seconds: 60 * 60 },
  { label: "last 24 hours", seconds: 24 * 60 * 60 },
] as const;

const GRPC_CODES: Record<number, string> = {
  0: "OK",
  1: "CANCELLED",
  2: "UNKNOWN",
  3: "INVALID_ARGUMENT",
  4: "DEADLINE_EXCEEDED",
  5: "NOT_FOUND",
  6: "ALREADY_EXISTS",
  7: "PERMISSION_DENIED",
  8: "RESOURCE_EXHAUSTED",
  9: "FAILED_PRECONDITION",
  10: "ABORTED",
  11: "OUT_OF_RANGE",
  12: "UNIMPLEMENTED",
  13: "INTERNAL",
  14: "UNAVAILABLE",
  15: "DATA_LOSS",
  16: "UNAUTHENTICATED",
};

const DECISIONS: Record<Decision, { text: string; className: string; meaning: string }> = {
  [Decision.UNSPECIFIED]: {
    text: "No verdict",
    className: "decision-none",
    meaning: "No decision was made.",
  },
  [Decision.INSUFFICIENT_DATA]: {
    text: "Insufficient data",
    className: "decision-none",
    meaning: "There is not enough data to decide yet.",
  },
  [Decision.PROMOTE]: {
    text: "Promote",
    className: "decision-promote",
    meaning: "The shadow model meets every threshold and can replace the primary.",
  },
  [Decision.HOLD]: {
    text: "Hold",
    className: "decision-hold",
    meaning: "Keep observing: the shadow is neither clearly better nor clearly worse.",
  },
  [Decision.ROLLBACK]: {
    text: "Roll back",
    className: "decision-rollback",
    meaning: "The shadow model is clearly worse than the primary and should be removed.",
  },
};

const OUTCOMES: Record<CheckOutcome, string> = {
  [CheckOutcome.UNSPECIFIED]: "—",
  [CheckOutcome.PASS]: "pass",
  [CheckOutcome.WARN]: "warn",
  [CheckOutcome.FAIL]: "fail",
  [CheckOutcome.SKIPPED]: "skipped",
};

function latencyBuckets(role: RoleSummary | undefined): LatencyBucketView[] {
  const buckets = role?.latencyBuckets ?? [];
  return buckets.map((bucket, index) => ({
    // The last bucket is +Inf; tolerate a collector that leaves it 0.
    upperBoundMs:
      !Number.isFinite(bucket.upperBoundMs) || (index === buckets.length - 1 && bucket.upperBoundMs === 0)
        ? Number.POSITIVE_INFINITY
        : bucket.upperBoundMs,
    count: Number(bucket.count),
  }));
}

function modelsOf(role: RoleSummary | undefined): string {
  const models = role?.models ?? [];
  return models.length > 0 ? models.map((model) => `${model.name} ${model.version}`).join(", ") : "—";
}

function secondsOf(duration: Duration | undefined): string {
  const ms = Number(duration?.seconds ?? 0n) * 1000 + (duration?.nanos ?? 0) / 1e6;
  return `${(ms / 1000).toFixed(1)} s`;
}

function timeOf(timestamp: Timestamp | undefined): string {
  return timestamp ? time(timestampDate(timestamp)) : "none in this window";
}

function topScore(probabilities: readonly { label: string; probability: number }[], label: string): string {
  const match = probabilities.find((probability) => probability.label === label);
  return match ? percent(match.probability) : "—";
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

function missingReason(error: unknown): string {
  const code = ConnectError.from(error).code;
  if (code === Code.Unimplemented) {
    return "The comparison service (metrics-service) does not produce reports yet.";
  }
  return "The comparison service (metrics-service) is not reachable.";
}

export interface ShadowPageProps {
  /** Pause before reconnecting after the n-th failure in a row; tests shorten it. */
  retryDelayMs?: (attempt: number) => number;
}

/**
 * The shadow comparison, live: a WatchShadowReport stream pushes a new report whenever the data changes. Shows the
 * verdict with its reasons, agreement with its 95 % interval and over time, the label-flip matrix, latency per role,
 * accuracy on user feedback, errors and the recent disagreements. Without a comparison service, or without data, it
 * says so — it never shows made-up numbers.
 */
export function ShadowPage(props: ShadowPageProps) {
  const { metrics } = useClients();
  const [windowSeconds, setWindowSeconds] = createSignal<number>(WINDOWS[1].seconds);
  const [report, setReport] = createSignal<ShadowReport>();
  const [status, setStatus] = createSignal<Status>({ kind: "connecting" });
  const retryDelay = (attempt: number) =>
    props.retryDelayMs ? props.retryDelayMs(attempt) : Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));

  createEffect(() => {
    const seconds = windowSeconds();
    const abort = new AbortController();
    onCleanup(() => abort.abort());
    setStatus({ kind: "connecting" });
    void (async () => {
      let attempt = 0;
      while (!abort.signal.aborted) {
        try {
          const stream = metrics.watchShadowReport(
            { window: create(DurationSchema, { seconds: BigInt(seconds) }), maxDisagreements: 10 },
            { signal: abort.signal },
          );
          for await (const update of stream) {
            attempt = 0;
            setReport(update.report);
            setStatus({ kind: "live", updated: new Date() });
          }
        } catch (error) {
          if (abort.signal.aborted) {
            return;
          }
          if (isComparisonMissing(error)) {
            setReport(undefined);
            setStatus({ kind: "missing", why: missingReason(error) });
          } else {
            setStatus({ kind: "reconnecting", problem: ConnectError.from(error).rawMessage });
          }
        }
        await sleep(retryDelay(attempt), abort.signal);
        attempt++;
      }
    })();
  });

  const hasData = () => {
    const current = report();
    return current !== undefined && (current.totals?.requestCount ?? 0n) > 0n;
  };

  return (
    <section aria-labelledby="shadow-heading" class="page">
      <h1 id="shadow-heading">Shadow comparison</h1>
      <p class="lead">
        Every request the primary model answers is also sent to the shadow model. Both report their
        predictions, which are joined by request id — so the two models are compared request by request on
        real traffic.
      </p>
      <div class="toolbar">
        <label for="window">Window</label>
        <select
          id="window"
          value={String(windowSeconds())}
          onChange={(event) => setWindowSeconds(Number(event.currentTarget.value))}
        >
          <For each={WINDOWS}>
            {(option) => <option value={String(option.seconds)}>{option.label}</option>}
          </For>
        </select>
        <StatusLine status={status()} />
      </div>

      <Show when={status().kind === "missing"}>
        <div class="card notice" role="note">
          <h2>No comparison data</h2>
          <p>
            {(status() as { why?: string }).why} There is nothing to compare until it does: predictions still
            work on the <a href="#/">Classify</a> page. This page keeps trying and updates by itself.
          </p>
        </div>
      </Show>

      <Show when={status().kind !== "missing" && report() !== undefined && !hasData()}>
        <div class="card notice" role="note">
          <h2>No comparison data yet</h2>
          <p>
            No predictions were reported in this window. Classify a few messages on the{" "}
            <a href="#/">Classify</a> page and the comparison appears here.
          </p>
        </div>
      </Show>

      <Show when={hasData() ? report() : undefined}>{(current) => <ReportView report={current()} />}</Show>
    </section>
  );
}

function StatusLine(props: { status: Status }) {
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
    }
  };
  return (
    <span class={`status status-${props.status.kind}`} role="status">
      {text()}
    </span>
  );
}

function Stat(props: { label: string; value: string; hint?: string }) {
  return (
    <div class="stat">
      <dt>{props.label}</dt>
      <dd>{props.value}</dd>
      <Show when={props.hint}>
        <dd class="muted small">{props.hint}</dd>
      </Show>
    </div>
  );
}

function Section(props: { title: string; id: string; children: JSX.Element }) {
  return (
    <section class="card" aria-labelledby={props.id}>
      <h2 id={props.id}>{props.title}</h2>
      {props.children}
    </section>
  );
}

function ReportView(props: { report: ShadowReport }) {
  const r = () => props.report;
  const totals = () => r().totals;
  const coverage = () => r().coverage;
  const agreement = () => r().agreement;
  const decision = () => DECISIONS[r().verdict?.decision ?? Decision.UNSPECIFIED];
  const labels = () => {
    const all = new Set<string>();
    for (const flip of r().labelFlips) {
      all.add(flip.primaryLabel);
      all.add(flip.shadowLabel);
    }
    return [...all].sort();
  };
  const flips = (primary: string, shadow: string) =>
    r().labelFlips.find((flip) => flip.primaryLabel === primary && flip.shadowLabel === shadow)?.count ?? 0n;
  const roles = () => [
    { name: "Primary", summary: r().primary },
    { name: "Shadow", summary: r().shadow },
  ];

  return (
    <div class="report">
      <section class={`card verdict ${decision().className}`} aria-labelledby="verdict-heading">
        <h2 id="verdict-heading">
          Verdict: <span class="decision">{decision().text}</span>
        </h2>
        <p>{decision().meaning}</p>
        <Show when={(r().verdict?.reasons.length ?? 0) > 0}>
          <ul class="reasons">
            <For each={r().verdict?.reasons}>{(reason) => <li>{reason}</li>}</For>
          </ul>
        </Show>
        <Show when={(r().verdict?.checks.length ?? 0) > 0}>
          <details>
            <summary>Every check</summary>
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Check</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">Observed</th>
                    <th scope="col">Threshold</th>
                    <th scope="col">Why</th>
                  </tr>
                </thead>
                <tbody>
                  <For each={r().verdict?.checks}>
                    {(check) => (
                      <tr>
                        <td>{check.name}</td>
                        <td class={`outcome-${OUTCOMES[check.outcome]}`}>{OUTCOMES[check.outcome]}</td>
                        <td>{check.observed.toPrecision(3)}</td>
                        <td>{check.threshold.toPrecision(3)}</td>
                        <td>{check.message}</td>
                      </tr>
                    )}
                  </For>
                </tbody>
              </table>
            </div>
          </details>
        </Show>
      </section>

      <Section title="Traffic" id="traffic-heading">
        <p class="muted small">
          The models are compared only on <strong>judged pairs</strong>: requests both answered, with the same
          input, that the caller did not break. Everything else is counted here, never in a model's numbers.
        </p>
        <dl class="stats">
          <Stat label="Requests" value={count(totals()?.requestCount ?? 0n)} />
          <Stat label="Pairs" value={count(totals()?.pairCount ?? 0n)} hint="both models reported" />
          <Stat
            label="Judged pairs"
            value={count(totals()?.judgedPairCount ?? 0n)}
            hint="errors, latency and accuracy are compared on these"
          />
          <Stat
            label="Coverage"
            value={percent(coverage()?.ratio ?? 0)}
            hint={`${count(coverage()?.mirroredPrimaryCount ?? 0n)} of ${count(
              coverage()?.settledPrimaryCount ?? 0n,
            )} settled primary records have a shadow record (expected share ${percent(
              coverage()?.expectedRatio ?? 0,
            )}; promotion needs ${percent(coverage()?.minRatio ?? 0)})`}
          />
          <Stat
            label="Mirror ratio"
            value={percent(totals()?.mirrorRatio ?? 0)}
            hint="shadow records ÷ primary records"
          />
          <Stat
            label="Primary only"
            value={count(totals()?.unmatchedPrimaryCount ?? 0n)}
            hint="sampled out, dropped or shadow failed"
          />
          <Stat
            label="Shadow only"
            value={count(totals()?.unmatchedShadowCount ?? 0n)}
            hint="primary record lost"
          />
          <Stat label="Waiting for partner" value={count(totals()?.pendingCount ?? 0n)} />
          <Stat
            label="Conflicts"
            value={count(totals()?.conflictCount ?? 0n)}
            hint="same request id, different input: never compared"
          />
          <Stat
            label="Caller errors"
            value={count(totals()?.callerErrorPairCount ?? 0n)}
            hint="both models refused the request identically: counted against neither"
          />
        </dl>
        <p data-testid="last-records">
          Last records: primary {timeOf(coverage()?.lastPrimaryTime)}, shadow{" "}
          {timeOf(coverage()?.lastShadowTime)}. The shadow has been silent for{" "}
          {secondsOf(coverage()?.shadowSilence)} while the primary's kept coming (promotion allows{" "}
          {secondsOf(coverage()?.maxShadowSilence)}).
        </p>
        <Show when={r().callerErrors.length > 0}>
          <h3>Refused by both models (caller errors)</h3>
          <ul class="caller-errors">
            <For each={r().callerErrors}>
              {(error) => (
                <li>
                  {count(error.pairCount)} pairs ×{" "}
                  {GRPC_CODES[error.grpcStatusCode] ?? `code ${error.grpcStatusCode}`} on both sides
                </li>
              )}
            </For>
          </ul>
        </Show>
        <Show when={r().recentConflicts.length > 0}>
          <h3>Conflicting pairs</h3>
          <div class="table-wrap">
            <table>
              <caption>Pairs whose inputs differ (newest first): not compared</caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Request id</th>
                  <th scope="col">Primary input</th>
                  <th scope="col">Shadow input</th>
                </tr>
              </thead>
              <tbody>
                <For each={r().recentConflicts}>
                  {(conflict) => (
                    <tr>
                      <td>{time(conflict.time ? timestampDate(conflict.time) : undefined)}</td>
                      <td>
                        <code>{conflict.requestId}</code>
                      </td>
                      <td>
                        <code>{conflict.primaryInput?.sha256.slice(0, 10) ?? "—"}</code>
                      </td>
                      <td>
                        <code>{conflict.shadowInput?.sha256.slice(0, 10) ?? "—"}</code>
                      </td>
                    </tr>
                  )}
                </For>
              </tbody>
            </table>
          </div>
        </Show>
      </Section>

      <Section title="Agreement" id="agreement-heading">
        <p class="big-number" data-testid="agreement-rate">
          {percent(agreement()?.rate ?? 0)}
        </p>
        <p>
          of {count(agreement()?.pairCount ?? 0n)} pairs got the same label from both models (95 % interval{" "}
          {percent(agreement()?.lowerBound ?? 0)} – {percent(agreement()?.upperBound ?? 0)}).
        </p>
        <h3>Agreement over time</h3>
        <Show
          when={r().agreementSeries.length > 0}
          fallback={<p class="muted">No time series in this report.</p>}
        >
          <AgreementChart
            points={r().agreementSeries.map((point) => ({
              start: point.startTime ? timestampDate(point.startTime) : new Date(0),
              pairs: Number(point.pairCount),
              agreeing: Number(point.agreeingCount),
            }))}
          />
        </Show>
        <h3>Label flips</h3>
        <Show when={labels().length > 0} fallback={<p class="muted">No pairs yet.</p>}>
          <div class="table-wrap">
            <table class="matrix">
              <caption>Pairs by primary label (rows) and shadow label (columns)</caption>
              <thead>
                <tr>
                  <th scope="col">Primary ↓ / Shadow →</th>
                  <For each={labels()}>{(label) => <th scope="col">{labelName(label)}</th>}</For>
                </tr>
              </thead>
              <tbody>
                <For each={labels()}>
                  {(primary) => (
                    <tr>
                      <th scope="row">{labelName(primary)}</th>
                      <For each={labels()}>
                        {(shadow) => (
                          <td
                            class={primary === shadow ? "agree" : flips(primary, shadow) > 0n ? "flip" : ""}
                          >
                            {count(flips(primary, shadow))}
                          </td>
                        )}
                      </For>
                    </tr>
                  )}
                </For>
              </tbody>
            </table>
          </div>
        </Show>
        <p class="muted small">
          Score delta (largest probability difference per pair): mean {(r().scoreDelta?.mean ?? 0).toFixed(3)}
          , p50 {(r().scoreDelta?.p50 ?? 0).toFixed(3)}, p95 {(r().scoreDelta?.p95 ?? 0).toFixed(3)}, max{" "}
          {(r().scoreDelta?.max ?? 0).toFixed(3)}.
        </p>
      </Section>

      <Section title="Latency per role" id="latency-heading">
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Role</th>
                <th scope="col">Model</th>
                <th scope="col">p50</th>
                <th scope="col">p95</th>
                <th scope="col">p99</th>
              </tr>
            </thead>
            <tbody>
              <For each={roles()}>
                {(role) => (
                  <tr>
                    <th scope="row">{role.name}</th>
                    <td>{modelsOf(role.summary)}</td>
                    <td>{ms(role.summary?.latencyP50Ms ?? 0)}</td>
                    <td>{ms(role.summary?.latencyP95Ms ?? 0)}</td>
                    <td>{ms(role.summary?.latencyP99Ms ?? 0)}</td>
                  </tr>
                )}
              </For>
            </tbody>
          </table>
        </div>
        <p>
          Shadow p99 ÷ primary p99:{" "}
          <strong>{r().latencyP99Ratio > 0 ? `${r().latencyP99Ratio.toFixed(2)}×` : "not known yet"}</strong>
        </p>
        <Show when={latencyBuckets(r().primary).length + latencyBuckets(r().shadow).length > 0}>
          <LatencyChart
            series={[
              { name: "Primary", className: "role-primary", buckets: latencyBuckets(r().primary) },
              { name: "Shadow", className: "role-shadow", buckets: latencyBuckets(r().shadow) },
            ]}
          />
        </Show>
      </Section>

      <Section title="Accuracy on feedback" id="accuracy-heading">
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Role</th>
                <th scope="col">Accuracy</th>
                <th scope="col">Correct / with feedback</th>
                <th scope="col">Errors (judged pairs)</th>
                <th scope="col">All records (errors)</th>
              </tr>
            </thead>
            <tbody>
              <For each={roles()}>
                {(role) => (
                  <tr>
                    <th scope="row">{role.name}</th>
                    <td>
                      {(role.summary?.feedbackCount ?? 0n) > 0n
                        ? percent(role.summary?.accuracy ?? 0)
                        : "no feedback"}
                    </td>
                    <td>
                      {count(role.summary?.correctCount ?? 0n)} / {count(role.summary?.feedbackCount ?? 0n)}
                    </td>
                    <td>
                      {count(role.summary?.errorCount ?? 0n)} ({percent(role.summary?.errorRate ?? 0)})
                    </td>
                    <td>
                      {count(role.summary?.allRecordCount ?? 0n)} ({count(role.summary?.allErrorCount ?? 0n)})
                    </td>
                  </tr>
                )}
              </For>
            </tbody>
          </table>
        </div>
        <Show when={r().errors.length > 0}>
          <ul class="errors">
            <For each={r().errors}>
              {(error) => (
                <li>
                  {error.role === Role.SHADOW ? "Shadow" : "Primary"}: {count(error.count)} ×{" "}
                  {GRPC_CODES[error.grpcStatusCode] ?? `code ${error.grpcStatusCode}`}
                </li>
              )}
            </For>
          </ul>
        </Show>
      </Section>

      <Section title="Recent disagreements" id="disagreements-heading">
        <Show
          when={r().recentDisagreements.length > 0}
          fallback={<p class="muted">The two models have not disagreed in this window.</p>}
        >
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Request id</th>
                  <th scope="col">Primary</th>
                  <th scope="col">Shadow</th>
                  <th scope="col">Feedback</th>
                  <th scope="col">Input</th>
                </tr>
              </thead>
              <tbody>
                <For each={r().recentDisagreements}>
                  {(item) => (
                    <tr>
                      <td>{time(item.time ? timestampDate(item.time) : undefined)}</td>
                      <td>
                        <code>{item.requestId}</code>
                      </td>
                      <td>
                        {labelName(item.primaryLabel)} (
                        {topScore(item.primaryProbabilities, item.primaryLabel)})
                      </td>
                      <td>
                        {labelName(item.shadowLabel)} ({topScore(item.shadowProbabilities, item.shadowLabel)})
                      </td>
                      <td>{item.feedbackLabel ? labelName(item.feedbackLabel) : "—"}</td>
                      <td>
                        <Show
                          when={item.input?.text}
                          fallback={
                            <span title={item.input?.sha256}>
                              <code>{item.input?.sha256.slice(0, 10) ?? "—"}</code>,{" "}
                              {count(item.input?.length ?? 0)} chars
                            </span>
                          }
                        >
                          <span class="snippet">{item.input?.text.slice(0, 120)}</span>
                        </Show>
                      </td>
                    </tr>
                  )}
                </For>
              </tbody>
            </table>
          </div>
        </Show>
      </Section>
    </div>
  );
}
