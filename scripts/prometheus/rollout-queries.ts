// The PromQL of the chart's rollout gates, as the rollout controllers would send it: the chart is rendered by the
// real helm with the Argo Rollouts AnalysisTemplate and the Flagger MetricTemplates on, and their query templates
// are filled in the way Argo (`{{args.name}}`, from the template's args or the given values) and Flagger
// (`{{ namespace }}`, `{{ interval }}`, `{{ target }}`) fill them.
import { ensureHelm } from "../chart/helm.js";
import { helmTemplate, type K8sObject } from "../chart/render.js";
import type { NamedQuery } from "./queries.js";

export const ROLLOUT_VALUES = {
  set: { "rolloutAnalysis.argo.enabled": true, "rolloutAnalysis.flagger.enabled": true },
};

export async function renderRolloutTemplates(): Promise<K8sObject[]> {
  const helm = await ensureHelm();
  return helmTemplate(helm, ROLLOUT_VALUES)
    .map((r) => r.obj)
    .filter((o) => o.kind === "AnalysisTemplate" || o.kind === "MetricTemplate");
}

function fill(template: string, values: Record<string, string>, where: string): string {
  return template.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`${where}: no value for {{ ${name} }}`);
    return value;
  });
}

export async function rolloutQueries(context: {
  namespace: string;
  interval: string;
}): Promise<NamedQuery[]> {
  const out: NamedQuery[] = [];
  for (const obj of await renderRolloutTemplates()) {
    if (obj.kind === "AnalysisTemplate") {
      const args: Record<string, string> = {};
      for (const a of obj.spec.args ?? []) args[`args.${a.name}`] = String(a.value);
      // What a Rollout would pass: its own namespace and the rate window under test.
      args["args.namespace"] = context.namespace;
      args["args.interval"] = context.interval;
      for (const m of obj.spec.metrics) {
        const where = `Argo AnalysisTemplate ${obj.metadata.name} metric ${m.name}`;
        out.push({ name: where, expr: fill(m.provider.prometheus.query, args, where) });
      }
    } else {
      const where = `Flagger MetricTemplate ${obj.metadata.name}`;
      out.push({
        name: where,
        expr: fill(
          obj.spec.query,
          { namespace: context.namespace, interval: context.interval, target: "model-service" },
          where,
        ),
      });
    }
  }
  return out;
}
