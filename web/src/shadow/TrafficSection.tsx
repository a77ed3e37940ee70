import { type Duration, type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import type { ShadowReport } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { For, Show } from "solid-js";
import { count, percent, time } from "../lib/format";
import { Section, Stat } from "./parts";
import { grpcCodeName } from "./wording";

function secondsOf(duration: Duration | undefined): string {
  const ms = Number(duration?.seconds ?? 0n) * 1000 + (duration?.nanos ?? 0) / 1e6;
  return `${(ms / 1000).toFixed(1)} s`;
}

function timeOf(timestamp: Timestamp | undefined): string {
  return timestamp ? time(timestampDate(timestamp)) : "none in this window";
}

/** Traffic: what was and was not compared — totals, coverage, unmatched records, conflicts and caller errors. */
export function TrafficSection(props: { report: ShadowReport }) {
  const totals = () => props.report.totals;
  const coverage = () => props.report.coverage;
  return (
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
      <Show when={props.report.callerErrors.length > 0}>
        <h3>Refused by both models (caller errors)</h3>
        <ul class="caller-errors">
          <For each={props.report.callerErrors}>
            {(error) => (
              <li>
                {count(error.pairCount)} pairs × {grpcCodeName(error.grpcStatusCode)} on both sides
              </li>
            )}
          </For>
        </ul>
      </Show>
      <Show when={props.report.recentConflicts.length > 0}>
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
              <For each={props.report.recentConflicts}>
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
  );
}
