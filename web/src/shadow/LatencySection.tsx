import type { RoleSummary, ShadowReport } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { For, Show } from "solid-js";
import { type LatencyBucketView, LatencyChart } from "../components/LatencyChart";
import { ms } from "../lib/format";
import { Section } from "./parts";

export function latencyBuckets(role: RoleSummary | undefined): LatencyBucketView[] {
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

export function modelsOf(role: RoleSummary | undefined): string {
  const models = role?.models ?? [];
  return models.length > 0 ? models.map((model) => `${model.name} ${model.version}`).join(", ") : "—";
}

/** "1.19×", or "not known yet" while either side has no latency. */
export function p99Ratio(report: ShadowReport): string {
  return report.latencyP99Ratio > 0 ? `${report.latencyP99Ratio.toFixed(2)}×` : "not known yet";
}

/** Latency per role: p50/p95/p99 of each side, the p99 ratio and the distribution plot. */
export function LatencySection(props: { report: ShadowReport }) {
  const roles = () => [
    { name: "Primary", summary: props.report.primary },
    { name: "Shadow", summary: props.report.shadow },
  ];
  return (
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
        Shadow p99 ÷ primary p99: <strong>{p99Ratio(props.report)}</strong>
      </p>
      <Show
        when={latencyBuckets(props.report.primary).length + latencyBuckets(props.report.shadow).length > 0}
      >
        <LatencyChart
          series={[
            { name: "Primary", className: "role-primary", buckets: latencyBuckets(props.report.primary) },
            { name: "Shadow", className: "role-shadow", buckets: latencyBuckets(props.report.shadow) },
          ]}
        />
      </Show>
    </Section>
  );
}
