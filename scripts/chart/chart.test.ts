// The chart, checked with the real helm v3.17.3 (no cluster here): `helm lint --strict`, `helm template` on several
// value sets, every rendered object validated against the Kubernetes / Istio / prometheus-operator models with
// unknown fields rejected, and the cross-object checks of checks.ts.
import { cpSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  byKind,
  CANDIDATE_LABEL,
  candidateWorkloads,
  checkMirroring,
  checkModelServiceRoles,
  checkReplicas,
  checkZeroTrust,
  envNames,
  genericChecks,
  modelServices,
  type Workload,
  workloads,
} from "./checks.js";
import { ensureHelm } from "./helm.js";
import { validateAll } from "./k8s-validate.js";
import {
  API_VERSIONS,
  CHART_DIR,
  capabilityGates,
  expectations,
  helmLint,
  helmTemplate,
  type K8sObject,
  NAMESPACE,
  type Rendered,
  runHelm,
  templateArgs,
  type ValueArgs,
} from "./render.js";

interface ValueSet {
  values: ValueArgs;
  istio: boolean;
  /** Each candidate's mirror share, in the values' order ({} = no candidate). */
  mirrors: Record<string, number>;
  /** Replica counts of app-service, the primary and each candidate. */
  replicas: { app: number | "hpa"; primary: number | "hpa"; candidates: Record<string, number> };
  /** Secrets the values name that exist outside the chart. */
  externalSecrets?: string[];
  /** Kinds that must be rendered (beyond the ones every set has). */
  kinds?: string[];
}

const ONE = { "spam-v2": 1 };
const VALUE_SETS: Record<string, ValueSet> = {
  defaults: {
    values: {},
    istio: true,
    mirrors: { "spam-v2": 100 },
    replicas: { app: 1, primary: 1, candidates: ONE },
  },
  "istio off": {
    values: { files: ["istio-off.yaml"] },
    istio: false,
    mirrors: { "spam-v2": 100 },
    replicas: { app: 1, primary: 1, candidates: ONE },
  },
  "HPA on": {
    values: { files: ["hpa-on.yaml"] },
    istio: true,
    mirrors: { "spam-v2": 100 },
    replicas: { app: "hpa", primary: "hpa", candidates: ONE },
    kinds: ["HorizontalPodAutoscaler", "PodDisruptionBudget"],
  },
  "replicas 3 (the former shadow.replicaCount)": {
    values: { files: ["replicas-3.yaml"] },
    istio: true,
    mirrors: { "spam-v2": 100 },
    replicas: { app: 3, primary: 3, candidates: { "spam-v2": 3 } },
    kinds: ["PodDisruptionBudget"],
  },
  "mirror 10 %": {
    values: { files: ["mirror-10.yaml"] },
    istio: true,
    mirrors: { "spam-v2": 10 },
    replicas: { app: 1, primary: 1, candidates: ONE },
  },
  "ServiceMonitor, gateway TLS, mirror 12.5 %": {
    values: { files: ["service-monitor.yaml"] },
    istio: true,
    mirrors: { "spam-v2": 12.5 },
    replicas: { app: 1, primary: 1, candidates: ONE },
    kinds: ["ServiceMonitor"],
  },
  "dashboard, PrometheusRule, Argo and Flagger templates": {
    values: { files: ["observability.yaml"] },
    istio: true,
    mirrors: { "spam-v2": 100 },
    replicas: { app: 1, primary: 1, candidates: ONE },
    kinds: ["ServiceMonitor", "ConfigMap", "PrometheusRule", "AnalysisTemplate", "MetricTemplate"],
  },
  "no shadow (the former shadow.enabled=false), feedback secret from an existing Secret": {
    values: { files: ["no-shadow.yaml"] },
    istio: true,
    mirrors: {},
    replicas: { app: 1, primary: 1, candidates: {} },
    externalSecrets: ["shadowmesh-feedback-external"],
  },
  "no candidates (an empty list)": {
    values: { setJson: { candidates: [] } },
    istio: true,
    mirrors: {},
    replicas: { app: 1, primary: 1, candidates: {} },
  },
  "two candidates (100 % and 12.5 %, two pods of the second)": {
    values: { files: ["two-candidates.yaml"] },
    istio: true,
    mirrors: { "spam-v2": 100, "spam-lite": 12.5 },
    replicas: { app: 1, primary: 1, candidates: { "spam-v2": 1, "spam-lite": 2 } },
    kinds: ["PodDisruptionBudget"],
  },
  "two candidates, one deployed but not mirrored (0 %)": {
    values: {
      files: ["two-candidates.yaml"],
      setJson: {
        candidates: [
          { name: "spam-v2", model: "/app/models/spam-v2", version: "v2", mirrorPercent: 0 },
          { name: "spam-lite", model: "/app/models/spam-lite", version: "lite-1", mirrorPercent: 50 },
        ],
      },
    },
    istio: true,
    mirrors: { "spam-v2": 0, "spam-lite": 50 },
    replicas: { app: 1, primary: 1, candidates: { "spam-v2": 1, "spam-lite": 1 } },
  },
};

const ISTIO_KINDS = [
  "Gateway",
  "VirtualService",
  "DestinationRule",
  "PeerAuthentication",
  "AuthorizationPolicy",
];
const CORE_KINDS = ["ServiceAccount", "Service", "Deployment", "StatefulSet", "Pod"];

let helm: string;
beforeAll(async () => {
  helm = await ensureHelm();
});

function hasEnv(objects: K8sObject[], name: string) {
  return (w: Workload) =>
    (w.podSpec.containers ?? []).some((c: unknown) => envNames(objects, c).includes(name));
}

describe("the chart's Capabilities gates", () => {
  it("are all among the API versions the checks pass to helm template", () => {
    // helm template without --api-versions would silently skip a gated template and the checks would pass on less.
    for (const gate of capabilityGates()) expect(API_VERSIONS).toContain(gate);
  });
});

describe.each(Object.entries(VALUE_SETS))("value set: %s", (_name, set) => {
  let rendered: Rendered[];
  let objects: K8sObject[];
  beforeAll(() => {
    rendered = helmTemplate(helm, set.values);
    objects = rendered.map((r) => r.obj);
  });

  it("passes helm lint --strict", () => {
    const r = helmLint(helm, set.values);
    expect(r.stdout + r.stderr, r.stdout + r.stderr).toContain("0 chart(s) failed");
    expect(r.code).toBe(0);
  });

  it("renders the expected kinds", () => {
    const kinds = new Set(objects.map((o) => o.kind));
    const secret = set.externalSecrets ? [] : ["Secret"];
    for (const k of [...CORE_KINDS, ...secret, ...(set.istio ? ISTIO_KINDS : []), ...(set.kinds ?? [])]) {
      expect([...kinds], `kind ${k}`).toContain(k);
    }
  });

  it("renders only objects that validate against their models, with no unknown fields", async () => {
    expect(await validateAll(objects)).toEqual([]);
  });

  it("passes every cross-object check", () => {
    const results = genericChecks(objects, NAMESPACE, {
      ...expectations(set.values),
      externalSecrets: set.externalSecrets ?? [],
    });
    const failed = Object.fromEntries(Object.entries(results).filter(([, problems]) => problems.length > 0));
    expect(failed).toEqual({});
  });

  it("reads the candidates from the values as this test states them", () => {
    expect(expectations(set.values).candidates.map((c) => [c.name, c.percent, c.replicas])).toEqual(
      Object.entries(set.mirrors).map(([name, percent]) => [name, percent, set.replicas.candidates[name]]),
    );
  });

  it("gives the primary and each candidate their roles from the values, from one template", () => {
    expect(checkModelServiceRoles(objects, expectations(set.values).candidates)).toEqual([]);
    expect(modelServices(objects).shadow.map((w) => w.podLabels[CANDIDATE_LABEL])).toEqual(
      Object.keys(set.mirrors),
    );
    const ms = modelServices(objects);
    const sources = [...ms.primary, ...ms.shadow].map((w) => rendered.find((r) => r.obj === w.obj)?.source);
    expect(new Set(sources).size).toBe(1);
  });

  it(`mirrors ${JSON.stringify(set.mirrors)} % ${set.istio ? "through Envoy" : "from app-service"} and tells metrics-service so`, () => {
    const shares = Object.values(set.mirrors);
    expect(
      checkMirroring(objects, NAMESPACE, {
        istio: set.istio,
        percent: shares.length === 1 ? (shares[0] as number) : 0,
        candidates: Object.entries(set.mirrors).map(([name, percent]) => ({ name, percent })),
      }),
    ).toEqual([]);
  });

  it(
    set.istio
      ? "lets only the intended callers through (AuthorizationPolicies evaluated)"
      : "renders no AuthorizationPolicy",
    () => {
      if (set.istio) expect(checkZeroTrust(objects, NAMESPACE)).toEqual([]);
      else expect(byKind(objects, "AuthorizationPolicy")).toEqual([]);
    },
  );

  it("runs the replica counts the values ask for", () => {
    const as = (r: number | "hpa") => (r === "hpa" ? { hpa: { min: 2, max: 6 } } : { replicas: r });
    const ms = modelServices(objects);
    expect(
      checkReplicas(objects, [
        {
          label: "app-service",
          name: hasEnv(objects, "APP_SERVICE_MODEL_SERVICE_ADDRESS"),
          ...as(set.replicas.app),
        },
        {
          label: "primary",
          name: (w) => ms.primary.some((p) => p.obj === w.obj),
          ...as(set.replicas.primary),
        },
        ...Object.entries(set.replicas.candidates).map(([name, replicas]) => ({
          label: `candidate ${name}`,
          name: (w: Workload) => candidateWorkloads(objects, name).some((s) => s.obj === w.obj),
          replicas,
        })),
        { label: "metrics-service", name: hasEnv(objects, "METRICS_SERVICE_DATA_DIR"), replicas: 1 },
      ]),
    ).toEqual([]);
    const primary = workloads(objects).find((w) => ms.primary.some((p) => p.obj === w.obj));
    expect(primary).toBeDefined();
  });
});

describe("the checksum annotation", () => {
  it("changes on the pods whose configuration changed (mirror percentage: app-service and metrics-service)", () => {
    const sums = (values: ValueArgs) =>
      Object.fromEntries(
        helmTemplate(helm, values)
          .map((r) => r.obj)
          .filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet")
          .map((o) => [o.metadata.name, o.spec.template.metadata.annotations?.["checksum/config"]]),
      );
    const before = sums({});
    const after = sums({ files: ["mirror-10.yaml"] });
    const changed = Object.keys(before).filter((k) => before[k] !== after[k]);
    const objects = helmTemplate(helm, {}).map((r) => r.obj);
    const app = workloads(objects).find(hasEnv(objects, "APP_SERVICE_MODEL_SERVICE_ADDRESS"));
    const metrics = byKind(objects, "StatefulSet")[0];
    expect(changed).toContain(app?.name);
    expect(changed).toContain(metrics?.metadata.name);
  });
});

// The chart's own example value sets (charts/shadowmesh/ci/*-values.yaml): same checks, expectations read from them.
const CI_FILES = readdirSync(join(CHART_DIR, "ci"))
  .filter((f) => f.endsWith(".yaml"))
  .map((f) => join(CHART_DIR, "ci", f));

describe.each(CI_FILES)("chart example values %s", (file) => {
  const values: ValueArgs = { files: [file] };
  const want = expectations(values);
  let objects: K8sObject[];
  beforeAll(() => {
    objects = helmTemplate(helm, values).map((r) => r.obj);
  });

  it("pass helm lint --strict", () => {
    const r = helmLint(helm, values);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it("render objects that validate strictly and pass every check", async () => {
    expect(await validateAll(objects)).toEqual([]);
    const results = genericChecks(objects, NAMESPACE, want);
    expect(Object.fromEntries(Object.entries(results).filter(([, p]) => p.length > 0))).toEqual({});
    expect(checkModelServiceRoles(objects, want.candidates)).toEqual([]);
    expect(checkMirroring(objects, NAMESPACE, want)).toEqual([]);
  });
});

// Consistent report sampling only works when every side samples the same share: the model-services and app-service
// report requests whose id hashes below the rate, and metrics-service scales its shadow-silence allowance by it. One
// value sets all three; a per-service env entry (which could make them differ) is refused by the schema.
describe("report sampling", () => {
  const sampling = (values: ValueArgs) =>
    Object.fromEntries(
      byKind(
        helmTemplate(helm, values).map((r) => r.obj),
        "ConfigMap",
      ).flatMap((c) =>
        Object.entries((c.data ?? {}) as Record<string, string>).filter(([k]) =>
          k.endsWith("_REPORT_SAMPLE_PERCENT"),
        ),
      ),
    );

  it("is one value, told to both model-services, app-service and metrics-service", () => {
    const names = [
      "MODEL_SERVICE_REPORT_SAMPLE_PERCENT",
      "APP_SERVICE_REPORT_SAMPLE_PERCENT",
      "METRICS_SERVICE_REPORT_SAMPLE_PERCENT",
    ];
    expect(sampling({})).toEqual(Object.fromEntries(names.map((n) => [n, "100"])));
    expect(sampling({ set: { reportSamplePercent: 25 } })).toEqual(
      Object.fromEntries(names.map((n) => [n, "25"])),
    );
    expect(sampling({ setJson: { reportSamplePercent: 2.5 } })).toEqual(
      Object.fromEntries(names.map((n) => [n, "2.5"])),
    );
  });

  it("rolls every workload when it changes", () => {
    const sums = (values: ValueArgs) =>
      helmTemplate(helm, values)
        .map((r) => r.obj)
        .filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet")
        .map((o) => [o.metadata.name, o.spec.template.metadata.annotations?.["checksum/config"]]);
    const before = Object.fromEntries(sums({}));
    const after = sums({ set: { reportSamplePercent: 50 } });
    expect(after.length).toBe(4);
    for (const [name, sum] of after) expect(sum, name).not.toBe(before[name]);
  });
});

// NOTES.txt is not part of `helm template`'s output: render it as a template of a copy of the chart (helm then fails
// to parse it as YAML, so it prints it with --debug) and read what a user sees after `helm install`.
describe("NOTES.txt", () => {
  const notes = (values: ValueArgs): string => {
    const dir = mkdtempSync(join(tmpdir(), "shadowmesh-notes-"));
    try {
      cpSync(CHART_DIR, join(dir, "shadowmesh"), { recursive: true });
      renameSync(
        join(dir, "shadowmesh/templates/NOTES.txt"),
        join(dir, "shadowmesh/templates/zz-notes.yaml"),
      );
      const args = templateArgs(values).map((a) => (a === CHART_DIR ? join(dir, "shadowmesh") : a));
      const r = runHelm(helm, [...args, "--show-only", "templates/zz-notes.yaml", "--debug"]);
      const at = r.stdout.indexOf("# Source: shadowmesh/templates/zz-notes.yaml");
      expect(at, r.stderr).toBeGreaterThanOrEqual(0);
      return r.stdout.slice(at);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it("lists each candidate with its model, version and share, and the report command names one", () => {
    const text = notes({ files: ["two-candidates.yaml"] });
    expect(text).toMatch(
      /candidate shadowmesh-model-service-spam-v2 +version v2 +model \/app\/models\/spam-v2 +mirrored 100 %/,
    );
    expect(text).toMatch(/candidate shadowmesh-model-service-spam-lite +version lite-1 .* mirrored 12.5 %/);
    expect(text).toContain("--candidate spam-v2");
    expect(text).not.toContain("DEPRECATED");
  });

  it("says when nothing is compared, and flags the former single-shadow keys as deprecated", () => {
    const none = notes({ files: ["no-shadow.yaml"] });
    expect(none).toContain("no candidate");
    expect(none).not.toMatch(/^ +candidate /m);
    expect(none).toContain("DEPRECATED: modelService.shadow");
    expect(notes({ setJson: { candidates: [] } })).not.toContain("DEPRECATED");
  });
});
