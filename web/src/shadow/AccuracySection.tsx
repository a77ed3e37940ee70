import type { RoleSummary, ShadowReport } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { For, Show } from "solid-js";
import { count, percent } from "../lib/format";
import { Section } from "./parts";
import { grpcCodeName, roleName } from "./wording";

/** "75.0 %", or "no feedback" when nobody gave feedback on this side's answers. */
export function accuracyOf(role: RoleSummary | undefined): string {
  return (role?.feedbackCount ?? 0n) > 0n ? percent(role?.accuracy ?? 0) : "no feedback";
}

/** Accuracy on feedback and errors, per role. */
export function AccuracySection(props: { report: ShadowReport }) {
  const roles = () => [
    { name: "Primary", summary: props.report.primary },
    { name: "Shadow", summary: props.report.shadow },
  ];
  return (
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
                  <td>{accuracyOf(role.summary)}</td>
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
      <Show when={props.report.errors.length > 0}>
        <ul class="errors">
          <For each={props.report.errors}>
            {(error) => (
              <li>
                {roleName(error.role)}: {count(error.count)} × {grpcCodeName(error.grpcStatusCode)}
              </li>
            )}
          </For>
        </ul>
      </Show>
    </Section>
  );
}
