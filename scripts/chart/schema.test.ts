// values.schema.json and the templates' own guards refuse bad values, and helm says why. Each case runs the real
// `helm template` (with the pinned kube version) and asserts the exit code and the reason in helm's message.
import { beforeAll, describe, expect, it } from "vitest";
import { checkMirroring } from "./checks.js";
import { ensureHelm } from "./helm.js";
import { validateAll } from "./k8s-validate.js";
import { helmLint, helmTemplate, NAMESPACE, runHelm, templateArgs, type ValueArgs } from "./render.js";

let helm: string;
beforeAll(async () => {
  helm = await ensureHelm();
});

const SCHEMA_ERROR = "values don't meet the specifications of the schema(s)";
const SPAM_LITE = { name: "spam-lite", model: "/app/models/spam-lite", version: "lite-1" };

const REFUSED: { name: string; values: ValueArgs; reason: string | RegExp; bySchema?: boolean }[] = [
  {
    name: "mirror percentage 101",
    values: { set: { mirrorPercentage: 101 } },
    reason: "mirrorPercentage: Must be less than or equal to 100",
  },
  {
    name: "mirror percentage -1",
    values: { set: { mirrorPercentage: -1 } },
    reason: "mirrorPercentage: Must be greater than or equal to 0",
  },
  {
    name: "mirror percentage as a word",
    values: { set: { mirrorPercentage: "lots" } },
    reason: /mirrorPercentage: (Invalid type|Does not match pattern)/,
  },
  {
    name: "primary replicas 0",
    values: { set: { "modelService.primary.replicaCount": 0 } },
    reason: "modelService.primary.replicaCount: Must be greater than or equal to 1",
  },
  {
    name: "shadow replicas 0",
    values: { set: { "modelService.shadow.replicaCount": 0 } },
    reason: "modelService.shadow.replicaCount: Must be greater than or equal to 1",
  },
  {
    name: "app-service replicas 0",
    values: { set: { "appService.replicaCount": 0 } },
    reason: "appService.replicaCount: Must be greater than or equal to 1",
  },
  {
    name: "metrics-service replicas 2 (SQLite has one writer)",
    values: { set: { "metricsService.replicaCount": 2 } },
    reason: "metricsService.replicaCount",
  },
  {
    name: "an unknown top-level key",
    values: { set: { mirrorPercent: 10 } },
    reason: "(root): Additional property mirrorPercent is not allowed",
  },
  {
    name: "an unknown nested key",
    values: { set: { "appService.resorces.requests.cpu": "1" } },
    reason: "appService: Additional property resorces is not allowed",
  },
  {
    name: "an unknown key deep down",
    values: { set: { "modelService.primary.autoscaling.targetCPU": 50 } },
    reason: "modelService.primary.autoscaling: Additional property targetCPU is not allowed",
  },
  {
    name: "the latest image tag",
    values: { set: { "modelService.image.tag": "latest" } },
    reason: "modelService.image.tag",
  },
  {
    name: "report sampling 0 (metrics-service refuses it: nothing would be compared)",
    values: { set: { reportSamplePercent: 0 } },
    reason: "reportSamplePercent: Must be greater than 0",
  },
  {
    name: "report sampling 0.0 through --set (a string to helm)",
    values: { set: { reportSamplePercent: "0.0" } },
    reason: /reportSamplePercent: (Must be greater than 0|Does not match pattern)/,
  },
  {
    name: "report sampling 101",
    values: { set: { reportSamplePercent: 101 } },
    reason: "reportSamplePercent: Must be less than or equal to 100",
  },
  {
    name: "report sampling set for one service alone (the sides would sample different requests)",
    values: { set: { "modelService.env.MODEL_SERVICE_REPORT_SAMPLE_PERCENT": "10" } },
    reason: "modelService.env",
  },
  {
    name: "report sampling set for metrics-service alone",
    values: { set: { "metricsService.env.METRICS_SERVICE_REPORT_SAMPLE_PERCENT": "10" } },
    reason: "metricsService.env",
  },
  {
    name: "report sampling set for app-service alone",
    values: { set: { "appService.env.APP_SERVICE_REPORT_SAMPLE_PERCENT": "10" } },
    reason: "appService.env",
  },
  {
    name: "primary and shadow with the same version label (the former shadow.version)",
    values: { set: { "modelService.shadow.version": "v1" } },
    reason: "every version must differ",
    bySchema: false,
  },
  {
    name: "a candidate without a name",
    values: { setJson: { candidates: [{ model: "/app/models/spam-v2", version: "v2" }] } },
    reason: "candidates.0: name is required",
  },
  {
    name: "a candidate without a model",
    values: { setJson: { candidates: [{ name: "spam-v2", version: "v2" }] } },
    reason: "candidates.0: model is required",
  },
  {
    name: "a candidate without a version",
    values: { setJson: { candidates: [{ name: "spam-v2", model: "/app/models/spam-v2" }] } },
    reason: "candidates.0: version is required",
  },
  {
    name: "a candidate named primary (the primary's subset and resources)",
    values: { setJson: { candidates: [{ name: "primary", model: "/app/models/spam-v2", version: "v2" }] } },
    reason: "candidates.0.name: Must not validate the schema (not)",
  },
  {
    name: "a candidate name that is no DNS label",
    values: { setJson: { candidates: [{ name: "Spam_V2", model: "/app/models/spam-v2", version: "v2" }] } },
    reason: "candidates.0.name: Does not match pattern",
  },
  {
    name: "a candidate mirrored 101 %",
    values: { setJson: { candidates: [{ ...SPAM_LITE, mirrorPercent: 101 }] } },
    reason: "candidates.0.mirrorPercent: Must be less than or equal to 100",
  },
  {
    name: "a candidate mirrored -1 %",
    values: { setJson: { candidates: [{ ...SPAM_LITE, mirrorPercent: -1 }] } },
    reason: "candidates.0.mirrorPercent: Must be greater than or equal to 0",
  },
  {
    name: "a candidate mirrored '150' % (a string)",
    values: { setJson: { candidates: [{ ...SPAM_LITE, mirrorPercent: "150" }] } },
    reason: "candidates.0.mirrorPercent: Does not match pattern",
  },
  {
    name: "a candidate with 0 replicas",
    values: { setJson: { candidates: [{ ...SPAM_LITE, replicas: 0 }] } },
    reason: "candidates.0.replicas: Must be greater than or equal to 1",
  },
  {
    name: "a candidate with a misspelled key",
    values: { setJson: { candidates: [{ ...SPAM_LITE, mirrorPercentage: 10 }] } },
    reason: "candidates.0: Additional property mirrorPercentage is not allowed",
  },
  {
    name: "two candidates with the same name",
    values: {
      setJson: { candidates: [SPAM_LITE, { ...SPAM_LITE, model: "/app/models/spam-v2", version: "v2" }] },
    },
    reason: 'candidates: the name "spam-lite" is listed twice',
    bySchema: false,
  },
  {
    name: "the same candidate listed twice",
    values: { setJson: { candidates: [SPAM_LITE, SPAM_LITE] } },
    reason: "candidates: array items[0,1] must be unique",
  },
  {
    name: "two candidates with the same version",
    values: {
      setJson: { candidates: [SPAM_LITE, { ...SPAM_LITE, name: "spam-v2", model: "/app/models/spam-v2" }] },
    },
    reason: 'candidates: spam-v2 has version "lite-1", like candidate spam-lite',
    bySchema: false,
  },
  {
    name: "a candidate with the primary's version",
    values: { setJson: { candidates: [{ ...SPAM_LITE, version: "v1" }] } },
    reason: 'candidates: spam-lite has version "v1", like the primary',
    bySchema: false,
  },
  {
    name: "a candidate whose resource names exceed 63 characters",
    values: {
      set: { fullnameOverride: "a".repeat(40) },
      setJson: { candidates: [{ ...SPAM_LITE, name: "a-rather-long-candidate-name" }] },
    },
    reason: "longer than 63 characters",
    bySchema: false,
  },
  {
    name: "two candidates without Istio (app-service mirrors to one)",
    values: { files: ["two-candidates.yaml", "istio-off.yaml"] },
    reason: "2 candidates with istio.enabled=false",
    bySchema: false,
  },
  {
    name: "a rollout gate on a candidate that is not listed",
    values: { set: { "rolloutAnalysis.argo.enabled": true, "rolloutAnalysis.candidate": "spam-v9" } },
    reason: 'rolloutAnalysis.candidate "spam-v9" is not one of the candidates (spam-v2)',
    bySchema: false,
  },
  {
    name: "a grace period shorter than shutdown delay + timeout",
    values: { set: { "metricsService.terminationGracePeriodSeconds": 15 } },
    reason: "must exceed shutdown.delayMs + shutdown.timeoutMs",
    bySchema: false,
  },
];

describe("bad values", () => {
  it.each(REFUSED)("are refused with the reason: $name", ({ values, reason, bySchema = true }) => {
    const r = runHelm(helm, templateArgs(values));
    expect(r.code, r.stdout.slice(0, 200)).toBe(1);
    if (bySchema) expect(r.stderr).toContain(SCHEMA_ERROR);
    if (typeof reason === "string") expect(r.stderr).toContain(reason);
    else expect(r.stderr).toMatch(reason);
  });

  it("fail helm lint --strict too, with the reason", () => {
    const r = helmLint(helm, { set: { mirrorPercentage: 101 } });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain("mirrorPercentage: Must be less than or equal to 100");
    expect(r.stdout + r.stderr).toContain("1 chart(s) failed");
  });

  it("are refused for a Kubernetes older than the chart's kubeVersion", () => {
    const args = templateArgs({}).map((a) => (a === "1.31.0" ? "1.28.0" : a));
    const r = runHelm(helm, args);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("incompatible with Kubernetes v1.28.0");
  });
});

describe("good edge values", () => {
  const GOOD: { name: string; values: ValueArgs }[] = [
    { name: "mirror 0 %", values: { set: { mirrorPercentage: 0 } } },
    { name: "no candidates", values: { setJson: { candidates: [] } } },
    { name: "a candidate at 0 %", values: { setJson: { candidates: [{ ...SPAM_LITE, mirrorPercent: 0 }] } } },
    {
      name: "a candidate at '12.5' % (a string)",
      values: { setJson: { candidates: [{ ...SPAM_LITE, mirrorPercent: "12.5" }] } },
    },
    {
      name: "a rollout gate on the second candidate",
      values: {
        files: ["two-candidates.yaml"],
        set: { "rolloutAnalysis.flagger.enabled": true, "rolloutAnalysis.candidate": "spam-lite" },
      },
    },
    { name: "mirror 100 %", values: { set: { mirrorPercentage: 100 } } },
    // --set would pass "0.5" as a string (helm 3 parses only integers): decimals need --set-json or a values file.
    { name: "mirror 0.5 % (--set-json)", values: { setJson: { mirrorPercentage: 0.5 } } },
    {
      name: "report sampling 0.5 % through --set (a string to helm)",
      values: { set: { reportSamplePercent: "0.5" } },
    },
    {
      name: "one replica everywhere",
      values: { set: { "modelService.primary.replicaCount": 1, "appService.replicaCount": 1 } },
    },
  ];
  it.each(GOOD)("render: $name", ({ values }) => {
    const r = runHelm(helm, templateArgs(values));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("a decimal through --set (a string to helm) still renders a numeric mirror percentage", async () => {
    const objects = helmTemplate(helm, { set: { mirrorPercentage: 0.5 } }).map((r) => r.obj);
    expect(checkMirroring(objects, NAMESPACE, { istio: true, percent: 0.5 })).toEqual([]);
    expect(await validateAll(objects)).toEqual([]);
  });
});
