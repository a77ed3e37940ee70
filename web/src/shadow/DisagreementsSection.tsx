import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ShadowReport } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { For, Show } from "solid-js";
import { count, labelName, percent, time } from "../lib/format";
import { Section } from "./parts";

function topScore(probabilities: readonly { label: string; probability: number }[], label: string): string {
  const match = probabilities.find((probability) => probability.label === label);
  return match ? percent(match.probability) : "—";
}

/** The most recent requests the two models answered differently, with feedback and the input (or its hash). */
export function DisagreementsSection(props: { report: ShadowReport }) {
  return (
    <Section title="Recent disagreements" id="disagreements-heading">
      <Show
        when={props.report.recentDisagreements.length > 0}
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
              <For each={props.report.recentDisagreements}>
                {(item) => (
                  <tr>
                    <td>{time(item.time ? timestampDate(item.time) : undefined)}</td>
                    <td>
                      <code>{item.requestId}</code>
                    </td>
                    <td>
                      {labelName(item.primaryLabel)} ({topScore(item.primaryProbabilities, item.primaryLabel)}
                      )
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
  );
}
