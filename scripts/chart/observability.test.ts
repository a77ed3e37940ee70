// The chart's observability objects: the Grafana dashboard ConfigMap, the PrometheusRule, the Argo Rollouts
// AnalysisTemplate and the Flagger MetricTemplates. They carry the repository's files unchanged, validate strictly
// (a misspelled field fails, like everywhere else in the chart), and their rollout queries only use variables the
// rollout tools fill. The PromQL itself is evaluated against a real Prometheus in scripts/prometheus/.
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DASHBOARD_FILE, RULES_FILE } from "../prometheus/queries.js";
import { ensureHelm } from "./helm.js";
import { validateObject } from "./k8s-validate.js";
import { helmTemplate, type K8sObject } from "./render.js";

let helm: string;
let objects: K8sObject[];
beforeAll(async () => {
  helm = await ensureHelm();
  objects = helmTemplate(helm, { files: ["observability.yaml"] }).map((r) => r.obj);
});

const one = (kind: string, suffix = "") => {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name.endsWith(suffix));
  expect(found, `${kind} *${suffix}`).toHaveLength(1);
  return found[0] as K8sObject;
};
const copy = <T>(x: T): T => structuredClone(x);

describe("off by default", () => {
  it("renders none of them with the default values", () => {
    const kinds = helmTemplate(helm).map((r) => r.obj.kind);
    for (const k of ["PrometheusRule", "AnalysisTemplate", "MetricTemplate"]) expect(kinds).not.toContain(k);
    expect(
      helmTemplate(helm)
        .map((r) => r.obj)
        .filter((o) => o.kind === "ConfigMap" && o.metadata.labels?.grafana_dashboard),
    ).toEqual([]);
  });
});

describe("the Grafana dashboard ConfigMap", () => {
  it("carries the dashboard file unchanged, with the sidecar's label and the folder annotation", () => {
    const cm = one("ConfigMap", "-grafana-dashboard");
    expect(cm.metadata.labels.grafana_dashboard).toBe("1");
    expect(cm.metadata.annotations.grafana_folder).toBe("Shadowmesh");
    expect(cm.data["shadowmesh.json"]).toBe(readFileSync(DASHBOARD_FILE, "utf8").trimEnd());
    expect(JSON.parse(cm.data["shadowmesh.json"]).title).toBe("Shadowmesh: primary vs shadow");
  });
});

describe("the PrometheusRule", () => {
  it("holds exactly the groups of the plain rules file, with the labels the values add", () => {
    const rule = one("PrometheusRule");
    expect(rule.spec.groups).toEqual(parse(readFileSync(RULES_FILE, "utf8")).groups);
    expect(rule.metadata.labels.release).toBe("kube-prometheus-stack");
  });

  it("rejects a misspelled field", async () => {
    const bad = copy(one("PrometheusRule"));
    bad.spec.groups[0].rules[0].fore = "5m";
    expect(await validateObject(bad)).toEqual([
      expect.stringContaining("unknown field spec.groups[0].rules[0].fore"),
    ]);
  });
});

describe("the Argo Rollouts AnalysisTemplate", () => {
  it("validates against @kubernetes-models/argo-rollouts", async () => {
    expect(await validateObject(one("AnalysisTemplate"))).toEqual([]);
  });

  it("gates on the verdict (PROMOTE 1 passes, ROLLBACK -1 fails) and a gRPC success rate with the values' threshold", () => {
    const at = one("AnalysisTemplate");
    const metric = (name: string) => at.spec.metrics.find((m: { name: string }) => m.name === name);
    expect(metric("shadow-verdict")).toMatchObject({
      successCondition: "result[0] == 1",
      failureCondition: "result[0] == -1",
    });
    expect(metric("shadow-verdict").provider.prometheus.query).toContain("shadowmesh_verdict");
    expect(metric("grpc-success-rate")).toMatchObject({
      successCondition: "result[0] >= 0.995",
      failureCondition: "result[0] < 0.995",
      interval: "2m",
    });
    const q = metric("grpc-success-rate").provider.prometheus.query as string;
    expect(q).toContain('grpc_code!~"Unknown|DeadlineExceeded|Unimplemented|Internal|Unavailable|DataLoss"');
    expect(q).toContain("grpc_server_handled_total");
  });

  it("declares every {{args.x}} its queries use", () => {
    const at = one("AnalysisTemplate");
    const declared = new Set(at.spec.args.map((a: { name: string }) => a.name));
    const used = at.spec.metrics.flatMap((m: { provider: { prometheus: { query: string } } }) =>
      [...m.provider.prometheus.query.matchAll(/\{\{\s*args\.([\w-]+)\s*\}\}/g)].map((x) => x[1]),
    );
    expect(used.length).toBeGreaterThan(0);
    expect(used.filter((u: string) => !declared.has(u))).toEqual([]);
  });

  it("rejects a misspelled field, a wrong type and a missing metric name", async () => {
    const bad = copy(one("AnalysisTemplate"));
    bad.spec.metrics[0].sucessCondition = bad.spec.metrics[0].successCondition;
    bad.spec.metrics[1].provider.prometheus.adress = "http://x";
    const errors = await validateObject(bad);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringContaining("unknown field spec.metrics[0].sucessCondition"),
        expect.stringContaining("unknown field spec.metrics[1].provider.prometheus.adress"),
      ]),
    );
    const wrongType = copy(one("AnalysisTemplate"));
    wrongType.spec.metrics[0].successCondition = 1;
    expect((await validateObject(wrongType)).join("\n")).toContain("schema");
    const unnamed = copy(one("AnalysisTemplate"));
    delete unnamed.spec.metrics[0].name;
    expect((await validateObject(unnamed)).join("\n")).toContain("name");
  });
});

describe("the Flagger MetricTemplates", () => {
  it("validate against the transcribed CRD schema", async () => {
    for (const mt of objects.filter((o) => o.kind === "MetricTemplate"))
      expect(await validateObject(mt)).toEqual([]);
    expect(
      objects
        .filter((o) => o.kind === "MetricTemplate")
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(["shadowmesh-grpc-success-rate", "shadowmesh-shadow-verdict"]);
  });

  it("use only the variables Flagger fills ({{ namespace }}, {{ target }}, {{ interval }})", () => {
    for (const mt of objects.filter((o) => o.kind === "MetricTemplate")) {
      const vars = [...(mt.spec.query as string).matchAll(/\{\{\s*([\w.]+)\s*\}\}/g)].map((m) => m[1]);
      expect(vars.length).toBeGreaterThan(0);
      expect(vars.filter((v) => !["namespace", "target", "interval"].includes(v as string))).toEqual([]);
    }
  });

  it("reject a misspelled field, a provider Flagger does not know and a missing query", async () => {
    const bad = copy(one("MetricTemplate", "-shadow-verdict"));
    bad.spec.querry = bad.spec.query;
    delete bad.spec.query;
    bad.spec.provider.type = "prom";
    const errors = await validateObject(bad);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringContaining("unknown field spec.querry"),
        expect.stringContaining("spec.query: required"),
        expect.stringContaining("spec.provider.type: must be one of"),
      ]),
    );
  });
});
