import type { ShadowReport } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { For, Show } from "solid-js";
import { decisionWording, outcomeName } from "./wording";

/** The verdict: the decision, what it means, its reasons and every check. */
export function VerdictSection(props: { report: ShadowReport }) {
  const verdict = () => props.report.verdict;
  const decision = () => decisionWording(verdict()?.decision);
  return (
    <section class={`card verdict ${decision().className}`} aria-labelledby="verdict-heading">
      <h2 id="verdict-heading">
        Verdict: <span class="decision">{decision().text}</span>
      </h2>
      <p>{decision().meaning}</p>
      <Show when={(verdict()?.reasons.length ?? 0) > 0}>
        <ul class="reasons">
          <For each={verdict()?.reasons}>{(reason) => <li>{reason}</li>}</For>
        </ul>
      </Show>
      <Show when={(verdict()?.checks.length ?? 0) > 0}>
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
                <For each={verdict()?.checks}>
                  {(check) => (
                    <tr>
                      <td>{check.name}</td>
                      <td class={`outcome-${outcomeName(check.outcome)}`}>{outcomeName(check.outcome)}</td>
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
  );
}
