import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ShadowReport } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { For, Show } from "solid-js";
import { AgreementChart } from "../components/AgreementChart";
import { count, labelName, percent } from "../lib/format";
import { Section } from "./parts";

/** Agreement: the rate with its 95 % interval, over time, the label-flip matrix and the score deltas. */
export function AgreementSection(props: { report: ShadowReport }) {
  const agreement = () => props.report.agreement;
  const labels = () => {
    const all = new Set<string>();
    for (const flip of props.report.labelFlips) {
      all.add(flip.primaryLabel);
      all.add(flip.shadowLabel);
    }
    return [...all].sort();
  };
  const flips = (primary: string, shadow: string) =>
    props.report.labelFlips.find((flip) => flip.primaryLabel === primary && flip.shadowLabel === shadow)
      ?.count ?? 0n;
  const delta = () => props.report.scoreDelta;
  return (
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
        when={props.report.agreementSeries.length > 0}
        fallback={<p class="muted">No time series in this report.</p>}
      >
        <AgreementChart
          points={props.report.agreementSeries.map((point) => ({
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
                        <td class={primary === shadow ? "agree" : flips(primary, shadow) > 0n ? "flip" : ""}>
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
        Score delta (largest probability difference per pair): mean {(delta()?.mean ?? 0).toFixed(3)}, p50{" "}
        {(delta()?.p50 ?? 0).toFixed(3)}, p95 {(delta()?.p95 ?? 0).toFixed(3)}, max{" "}
        {(delta()?.max ?? 0).toFixed(3)}.
      </p>
    </Section>
  );
}
