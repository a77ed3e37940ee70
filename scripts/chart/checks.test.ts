// The checks must be able to fail: each test renders the real chart, breaks one thing in a copy of the output, and
// asserts that the check meant to catch it reports it (and names it).
import { beforeAll, describe, expect, it } from "vitest";
import {
  CANDIDATE_LABEL,
  checkAddresses,
  checkChecksumAnnotations,
  checkContainerHardening,
  checkDisruptionBudgets,
  checkImageTags,
  checkMirroring,
  checkModelServiceRoles,
  checkPrincipals,
  checkProbePorts,
  checkReferences,
  checkRetriesIdempotent,
  checkServiceAccounts,
  checkServicesSelectPods,
  checkSubsetsMatchWorkloads,
  checkTerminationGrace,
  checkVirtualServiceDestinations,
  checkZeroTrust,
  genericChecks,
  idempotentMethods,
} from "./checks.js";
import { ensureHelm } from "./helm.js";
import { validateObject } from "./k8s-validate.js";
import { expectations, externalPrincipals, helmTemplate, type K8sObject, NAMESPACE } from "./render.js";

// biome-ignore lint/suspicious/noExplicitAny: poking into rendered manifests
type Any = any;

// With Istio: two candidates (spam-v2 at 100 %, spam-lite at 12.5 %), so that a check that only knows one shadow
// shows here. Without Istio: the default single candidate.
const TWO = { files: ["two-candidates.yaml"] };
const CANDIDATES = expectations(TWO).candidates;
const ISTIO = { istio: true, percent: 0, candidates: CANDIDATES };
let withIstio: K8sObject[];
let withoutIstio: K8sObject[];
beforeAll(async () => {
  const helm = await ensureHelm();
  withIstio = helmTemplate(helm, TWO).map((r) => r.obj);
  withoutIstio = helmTemplate(helm, { files: ["istio-off.yaml"] }).map((r) => r.obj);
});

/** A deep copy of the rendered objects and a finder for one of them (kind + name suffix). */
function copy(objects: K8sObject[]) {
  const objs = structuredClone(objects);
  const find = (kind: string, suffix: string): Any => {
    const o = objs.find((o) => o.kind === kind && o.metadata.name.endsWith(suffix));
    if (!o) throw new Error(`no ${kind} *${suffix} rendered`);
    return o;
  };
  return { objs, find };
}

const container = (workload: Any): Any =>
  (workload.spec.template ?? workload).spec?.containers?.[0] ?? workload.spec.containers[0];
const configMapOf = (find: ReturnType<typeof copy>["find"], suffix: string): Any => find("ConfigMap", suffix);

describe("the strict model validation", () => {
  it("accepts the rendered objects unchanged", async () => {
    for (const o of withIstio) expect(await validateObject(o)).toEqual([]);
  });

  it("rejects a misspelled field deep in a pod template (resorces)", async () => {
    const { find } = copy(withIstio);
    const dep = find("Deployment", "-app-service");
    const c = container(dep);
    c.resorces = c.resources;
    const errors = await validateObject(dep);
    expect(errors).toEqual([
      "Deployment shadowmesh-app-service (apps/v1): unknown field spec.template.spec.containers[0].resorces",
    ]);
  });

  it("rejects unknown fields in Istio objects (percentge in a mirrors entry, mirrorPercentge)", async () => {
    const { find } = copy(withIstio);
    const vs = find("VirtualService", "-model-service");
    const route = vs.spec.http.find((r: Any) => r.mirrors);
    route.mirrors[1].percentge = route.mirrors[1].percentage;
    delete route.mirrors[1].percentage;
    route.mirrorPercentge = { value: 10 };
    const errors = await validateObject(vs);
    expect(errors, errors.join("\n")).toHaveLength(2);
    expect(errors.join("\n")).toMatch(/unknown field spec\.http\[\d+\]\.mirrors\[1\]\.percentge$/m);
    expect(errors.join("\n")).toMatch(/unknown field spec\.http\[\d+\]\.mirrorPercentge$/m);
  });

  it("rejects unknown fields at the top, in metadata and in a probe", async () => {
    const { find } = copy(withIstio);
    const sts = find("StatefulSet", "-metrics-service");
    sts.metdata = {};
    sts.metadata.lables = { a: "b" };
    container(sts).readinessProbe.grpc.prot = 1;
    const errors = (await validateObject(sts)).join("\n");
    expect(errors).toContain("unknown field metdata");
    expect(errors).toContain("unknown field metadata.lables");
    expect(errors).toContain("unknown field spec.template.spec.containers[0].readinessProbe.grpc.prot");
  });

  it("accepts any key in maps (labels, annotations, ConfigMap data, selectors)", async () => {
    const { find } = copy(withIstio);
    const dep = find("Deployment", "-model-service-spam-lite");
    dep.metadata.labels["anything.example.com/at-all"] = "x";
    dep.spec.template.metadata.annotations.whatever = "y";
    const cm = configMapOf(find, "-app-service");
    cm.data.SOME_NEW_KEY = "z";
    expect(await validateObject(dep)).toEqual([]);
    expect(await validateObject(cm)).toEqual([]);
  });

  it("rejects schema violations (wrong type, bad enum)", async () => {
    const { find } = copy(withIstio);
    const dep = find("Deployment", "-app-service");
    dep.spec.replicas = "3";
    expect((await validateObject(dep)).join()).toMatch(/schema: .*replicas must be integer/);
    const svc = find("Service", "-app-service");
    svc.spec.ports[0].port = "http";
    expect((await validateObject(svc)).join()).toMatch(/schema: .*port must be integer/);
  });

  it("rejects a kind no installed model knows, and an apiVersion the kind does not have", async () => {
    expect(
      await validateObject({ apiVersion: "apps/v1", kind: "Deploymnet", metadata: { name: "x" } }),
    ).toEqual(["Deploymnet x (apps/v1): unknown kind: no model for apps/v1 Deploymnet"]);
    expect(
      (
        await validateObject({
          apiVersion: "networking.istio.io/v9",
          kind: "VirtualService",
          metadata: { name: "x" },
        })
      ).join(),
    ).toContain("unknown kind");
    expect(
      (
        await validateObject({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "x" } })
      ).join(),
    ).toContain("unknown kind");
  });
});

describe("the cross-object checks", () => {
  it("pass on the rendered chart (the baseline the broken copies differ from)", () => {
    for (const objs of [withIstio, withoutIstio]) {
      const failed = Object.entries(genericChecks(objs, NAMESPACE, expectations())).filter(
        ([, p]) => p.length > 0,
      );
      expect(failed).toEqual([]);
    }
  });

  it("catch a Service that selects no pods, or targets a port the pods do not open", () => {
    const { objs, find } = copy(withIstio);
    find("Service", "-model-service").spec.selector.app = "model-servic";
    find("Service", "-app-service").spec.ports[0].targetPort = "htttp";
    const problems = checkServicesSelectPods(objs).join("\n");
    expect(problems).toMatch(/Service shadowmesh-model-service selects no pods/);
    expect(problems).toMatch(/Service shadowmesh-app-service port .* targets htttp/);
  });

  it("catch a DestinationRule subset whose labels no pod carries", () => {
    const { objs, find } = copy(withIstio);
    const dr = find("DestinationRule", "-model-service");
    const lite = dr.spec.subsets.find((s: Any) => s.name === "spam-lite");
    lite.labels.version = "v3";
    expect(checkSubsetsMatchWorkloads(objs, NAMESPACE).join()).toMatch(/subset spam-lite .* matches no pods/);
  });

  it("catch a mirror (or route) to a subset or host that does not exist", () => {
    const { objs, find } = copy(withIstio);
    const vs = find("VirtualService", "-model-service");
    const route = vs.spec.http.find((r: Any) => r.mirrors);
    route.mirrors[1].destination.subset = "canary";
    expect(checkVirtualServiceDestinations(objs, NAMESPACE).join()).toMatch(
      /mirror subset canary is not in a DestinationRule/,
    );
    route.mirrors[0].destination.host = "model-service-typo";
    expect(checkVirtualServiceDestinations(objs, NAMESPACE).join()).toMatch(
      /mirror host model-service-typo is not a rendered Service/,
    );
  });

  it("catch a mirror that reaches the primary's pods or a route that reaches a candidate's", () => {
    const { objs, find } = copy(withIstio);
    const dr = find("DestinationRule", "-model-service");
    const primary = dr.spec.subsets.find((s: Any) => s.name === "primary");
    const shadow = dr.spec.subsets.find((s: Any) => s.name === "spam-v2");
    [primary.labels, shadow.labels] = [shadow.labels, primary.labels];
    const problems = checkMirroring(objs, NAMESPACE, ISTIO).join("\n");
    expect(problems).toMatch(/mirror \S+\/spam-v2 does not select exactly one candidate's pods/);
    expect(problems).toMatch(/candidate spam-v2 \(100 %\) is mirrored by 0 entries, expected 1/);
    expect(problems).toMatch(/routes to .* not only the primary's pods/);
    // …which the subset check alone cannot see: both subsets still match some pods.
    expect(checkSubsetsMatchWorkloads(objs, NAMESPACE)).toEqual([]);
  });

  it("catch an AuthorizationPolicy principal that is not a rendered ServiceAccount", () => {
    const { objs, find } = copy(withIstio);
    const ap = find("AuthorizationPolicy", "-model-service");
    const source = ap.spec.rules
      .flatMap((r: Any) => r.from ?? [])
      .find((f: Any) => f.source?.principals)?.source;
    source.principals[0] = `cluster.local/ns/${NAMESPACE}/sa/nobody`;
    expect(checkPrincipals(objs, NAMESPACE, externalPrincipals()).join()).toMatch(
      /sa\/nobody is not a rendered ServiceAccount/,
    );
    source.principals[0] = "cluster.local/ns/other/sa/app";
    expect(checkPrincipals(objs, NAMESPACE, externalPrincipals()).join()).toMatch(/outside shadowmesh/);
  });

  it("catch a probe on a port the container does not open (numbered and named)", () => {
    const { objs, find } = copy(withIstio);
    const primary = container(find("Deployment", "-model-service-primary"));
    primary.readinessProbe.grpc.port = 50052;
    const app = container(find("Deployment", "-app-service"));
    app.livenessProbe.httpGet.port = "metrix";
    const problems = checkProbePorts(objs).join("\n");
    expect(problems).toMatch(/model-service-primary container \S+ readinessProbe port 50052/);
    expect(problems).toMatch(/app-service container \S+ livenessProbe port metrix/);
  });

  it("catch latest and missing image tags", () => {
    const { objs, find } = copy(withIstio);
    const c = container(find("Deployment", "-app-service"));
    c.image = "ghcr.io/shadowmesh/app-service:latest";
    const test = container(find("Pod", "-test-predict"));
    test.image = test.image.replace(/:[^:/]+$/, "");
    const problems = checkImageTags(objs).join("\n");
    expect(problems).toMatch(/app-service.* uses latest/);
    expect(problems).toMatch(/Pod shadowmesh-test-predict .* has no tag/);
    // a registry port is not a tag
    test.image = "registry.local:5000/shadowmesh/test";
    expect(checkImageTags(objs).join()).toMatch(/registry.local:5000\/shadowmesh\/test has no tag/);
  });

  it("catch a container without resources or with a weakened securityContext (the helm test Pod too)", () => {
    const { objs, find } = copy(withIstio);
    const test = container(find("Pod", "-test-predict"));
    delete test.resources;
    const shadow = container(find("Deployment", "-model-service-spam-lite"));
    shadow.securityContext.readOnlyRootFilesystem = false;
    shadow.securityContext.capabilities.drop = [];
    delete shadow.securityContext.allowPrivilegeEscalation;
    const problems = checkContainerHardening(objs).join("\n");
    expect(problems).toMatch(/Pod shadowmesh-test-predict container \S+ has no cpu\/memory requests/);
    expect(problems).toMatch(
      /model-service-spam-lite container \S+ does not set readOnlyRootFilesystem: true/,
    );
    expect(problems).toMatch(/model-service-spam-lite container \S+ does not drop ALL capabilities/);
    expect(problems).toMatch(
      /model-service-spam-lite container \S+ does not set allowPrivilegeEscalation: false/,
    );
  });

  it("catch a root user and a missing seccomp profile", () => {
    const { objs, find } = copy(withIstio);
    const sts = find("StatefulSet", "-metrics-service");
    sts.spec.template.spec.securityContext = {};
    const c = container(sts);
    c.securityContext = {
      ...c.securityContext,
      runAsNonRoot: undefined,
      seccompProfile: undefined,
      runAsUser: 0,
    };
    const problems = checkContainerHardening(objs).join("\n");
    expect(problems).toMatch(/metrics-service container \S+ does not set runAsNonRoot: true/);
    expect(problems).toMatch(/metrics-service container \S+ runs as uid 0/);
    expect(problems).toMatch(/metrics-service container \S+ has no RuntimeDefault seccomp profile/);
  });

  it("catch workloads sharing a ServiceAccount, using the default one, or one that is not rendered", () => {
    const { objs, find } = copy(withIstio);
    find("Deployment", "-model-service-spam-lite").spec.template.spec.serviceAccountName =
      "shadowmesh-model-service-primary";
    delete find("Deployment", "-app-service").spec.template.spec.serviceAccountName;
    find("StatefulSet", "-metrics-service").spec.template.spec.serviceAccountName = "ghost";
    const problems = checkServiceAccounts(objs).join("\n");
    expect(problems).toMatch(/ServiceAccount shadowmesh-model-service-primary is shared by/);
    expect(problems).toMatch(
      /Deployment shadowmesh-app-service runs as the namespace's default ServiceAccount/,
    );
    expect(problems).toMatch(/uses ServiceAccount ghost, which is not rendered/);
  });

  it("catch more than one replica without a PodDisruptionBudget", () => {
    const { objs, find } = copy(withIstio);
    for (const o of objs.filter((o) => o.kind === "PodDisruptionBudget")) o.metadata.name = "removed";
    const withoutPdbs = objs.filter((o) => o.kind !== "PodDisruptionBudget");
    find("Deployment", "-model-service-primary").spec.replicas = 3;
    expect(checkDisruptionBudgets(withoutPdbs).join()).toMatch(
      /model-service-primary can run 3 replicas but has no PDB/,
    );
  });

  it("catch a pod template without a checksum annotation", () => {
    const { objs, find } = copy(withIstio);
    const ann = find("StatefulSet", "-metrics-service").spec.template.metadata.annotations;
    for (const k of Object.keys(ann)) if (k.startsWith("checksum/")) delete ann[k];
    expect(checkChecksumAnnotations(objs).join()).toMatch(
      /StatefulSet shadowmesh-metrics-service has no checksum/,
    );
  });

  it("catch a termination grace period that does not exceed shutdown delay + timeout", () => {
    const { objs, find } = copy(withIstio);
    find("Deployment", "-app-service").spec.template.spec.terminationGracePeriodSeconds = 15;
    expect(checkTerminationGrace(objs).join()).toMatch(
      /app-service: terminationGracePeriodSeconds 15s does not exceed/,
    );
  });

  it("catch a mirror percentage that differs from the values (VirtualService and metrics-service)", () => {
    expect(checkMirroring(withIstio, NAMESPACE, ISTIO)).toEqual([]);
    const tenPercent = CANDIDATES.map((c) => (c.name === "spam-v2" ? { ...c, percent: 10 } : c));
    expect(checkMirroring(withIstio, NAMESPACE, { ...ISTIO, candidates: tenPercent }).join("\n")).toMatch(
      /mirrors 100 % to spam-v2, values say 10/,
    );
    const { objs, find } = copy(withIstio);
    configMapOf(find, "-metrics-service").data.METRICS_SERVICE_EXPECTED_MIRROR_PERCENT = "50";
    expect(checkMirroring(objs, NAMESPACE, ISTIO).join()).toMatch(
      /METRICS_SERVICE_EXPECTED_MIRROR_PERCENT is 50, values say 0/,
    );
  });

  it("catch a candidate's mirror swapped, missing or doubled, and metrics-service told other shares", () => {
    let { objs, find } = copy(withIstio);
    const mirrors = () =>
      find("VirtualService", "-model-service").spec.http.find((r: Any) => r.mirrors).mirrors;
    // the two entries' shares swapped: each candidate gets the other's
    const [v2, lite] = mirrors();
    [v2.percentage, lite.percentage] = [lite.percentage, v2.percentage];
    let problems = checkMirroring(objs, NAMESPACE, ISTIO).join("\n");
    expect(problems).toMatch(/mirrors 12.5 % to spam-v2, values say 100/);
    expect(problems).toMatch(/mirrors 100 % to spam-lite, values say 12.5/);
    // spam-lite's entry dropped; spam-v2's doubled
    ({ objs, find } = copy(withIstio));
    mirrors()[1] = structuredClone(mirrors()[0]);
    problems = checkMirroring(objs, NAMESPACE, ISTIO).join("\n");
    expect(problems).toMatch(/candidate spam-v2 \(100 %\) is mirrored by 2 entries, expected 1/);
    expect(problems).toMatch(/candidate spam-lite \(12.5 %\) is mirrored by 0 entries, expected 1/);
    // the single `mirror` field next to the list
    ({ objs, find } = copy(withIstio));
    const route = find("VirtualService", "-model-service").spec.http.find((r: Any) => r.mirrors);
    route.mirror = structuredClone(route.mirrors[0].destination);
    expect(checkMirroring(objs, NAMESPACE, ISTIO).join()).toMatch(/uses the single `mirror`/);
    // metrics-service's per-candidate shares
    for (const [value, message] of [
      ["spam-v2=100", /gives spam-lite nothing, values say 12.5/],
      ["spam-v2=100,spam-lite=50", /gives spam-lite 50, values say 12.5/],
      ["spam-v2=100,spam-lite=12.5,spam-v3=5", /names spam-v3, no candidate/],
      ["spam-v2=100,spam-v2=100,spam-lite=12.5", /names spam-v2 twice/],
      ["spam-v2:100,spam-lite=12.5", /entry "spam-v2:100" is not name=percent/],
    ] as const) {
      ({ objs, find } = copy(withIstio));
      configMapOf(find, "-metrics-service").data.METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS = value;
      expect(checkMirroring(objs, NAMESPACE, ISTIO).join("\n"), value).toMatch(message);
    }
  });

  it("catch app-service mirroring by itself although Envoy mirrors", () => {
    const { objs, find } = copy(withIstio);
    configMapOf(find, "-app-service").data.APP_SERVICE_SHADOW_ADDRESS = "shadowmesh-model-service:50051";
    expect(checkMirroring(objs, NAMESPACE, ISTIO).join()).toMatch(/app-service must not mirror/);
  });

  it("catch, with Istio off, an Istio object, a missing shadow address, or one that reaches the primary", () => {
    const shadowAddress = (objs: K8sObject[]) =>
      (objs.find((o) => o.kind === "ConfigMap" && o.metadata.name.endsWith("-app-service")) as Any).data;
    let { objs } = copy(withoutIstio);
    objs.push(structuredClone(withIstio.find((o) => o.kind === "PeerAuthentication") as K8sObject));
    expect(checkMirroring(objs, NAMESPACE, { istio: false, percent: 100 }).join()).toMatch(
      /with Istio off the chart renders PeerAuthentication/,
    );
    ({ objs } = copy(withoutIstio));
    shadowAddress(objs).APP_SERVICE_SHADOW_ADDRESS = "";
    expect(checkMirroring(objs, NAMESPACE, { istio: false, percent: 100 }).join()).toMatch(
      /APP_SERVICE_SHADOW_ADDRESS= does not name a shadow-only Service of candidate spam-v2/,
    );
    ({ objs } = copy(withoutIstio));
    const data = shadowAddress(objs);
    data.APP_SERVICE_SHADOW_ADDRESS = data.APP_SERVICE_MODEL_SERVICE_ADDRESS;
    expect(checkMirroring(objs, NAMESPACE, { istio: false, percent: 100 }).join()).toMatch(
      /does not name a shadow-only Service/,
    );
  });

  it("catch a role that does not come from the values", () => {
    expect(checkModelServiceRoles(withIstio, CANDIDATES)).toEqual([]);
    const { objs, find } = copy(withIstio);
    const env = container(find("Deployment", "-model-service-spam-lite")).env;
    env.find((e: Any) => e.name === "MODEL_SERVICE_ROLE").value = "PRIMARY";
    const problems = checkModelServiceRoles(objs, CANDIDATES).join("\n");
    expect(problems).toMatch(/expected 1 PRIMARY model-service, found 2/);
    expect(problems).toMatch(/expected 2 SHADOW model-service, found 1/);
    expect(problems).toMatch(/candidate spam-lite: expected 1 SHADOW model-service, found 0/);
  });

  it("catch a candidate's pods without its name, with another's, another model or a version in use", () => {
    let { objs, find } = copy(withIstio);
    const pods = (suffix: string) => find("Deployment", suffix).spec.template;
    delete pods("-model-service-spam-lite").metadata.labels[CANDIDATE_LABEL];
    expect(checkModelServiceRoles(objs, CANDIDATES).join("\n")).toMatch(
      /model-service-spam-lite pods have no shadowmesh.io\/candidate label/,
    );
    ({ objs, find } = copy(withIstio));
    pods("-model-service-spam-lite").metadata.labels[CANDIDATE_LABEL] = "spam-v2";
    expect(checkModelServiceRoles(objs, CANDIDATES).join("\n")).toMatch(/both serve candidate spam-v2/);
    ({ objs, find } = copy(withIstio));
    const env = container(find("Deployment", "-model-service-spam-lite")).env;
    env.find((e: Any) => e.name === "MODEL_SERVICE_MODEL_DIR").value = "/app/models/spam-v2";
    pods("-model-service-spam-lite").metadata.labels.version = "v2";
    const problems = checkModelServiceRoles(objs, CANDIDATES).join("\n");
    expect(problems).toMatch(
      /candidate spam-lite: MODEL_SERVICE_MODEL_DIR is \/app\/models\/spam-v2, values say/,
    );
    expect(problems).toMatch(/candidate spam-lite: pods have version v2, values say lite-1/);
    expect(problems).toMatch(/model-service pods share a version label/);
    // a candidate the values do not list
    expect(checkModelServiceRoles(withIstio, CANDIDATES.slice(0, 1)).join("\n")).toMatch(
      /candidate spam-lite is rendered but not in the values/,
    );
  });

  it("catch an address that names no Service or a port the Service does not have", () => {
    const { objs, find } = copy(withIstio);
    const data = configMapOf(find, "-app-service").data;
    const [host] = String(data.APP_SERVICE_METRICS_SERVICE_ADDRESS).split(":");
    data.APP_SERVICE_METRICS_SERVICE_ADDRESS = `${host}:50052`;
    expect(checkAddresses(objs, NAMESPACE).join()).toMatch(/has no port 50052/);
    data.APP_SERVICE_METRICS_SERVICE_ADDRESS = "metrics:50053";
    expect(checkAddresses(objs, NAMESPACE).join()).toMatch(/metrics is not a rendered Service/);
  });

  it("catch a reference to a Secret, ConfigMap or volume that is not rendered", () => {
    const { objs, find } = copy(withIstio);
    const secret = find("Secret", "-feedback");
    secret.metadata.name = "renamed";
    const c = container(find("Deployment", "-app-service"));
    c.envFrom[0].configMapRef.name = "gone";
    c.volumeMounts = [...(c.volumeMounts ?? []), { name: "nowhere", mountPath: "/x" }];
    const problems = checkReferences(objs).join("\n");
    expect(problems).toMatch(/env \S+: no Secret key shadowmesh-feedback\/feedback-secret/);
    expect(problems).toMatch(/envFrom: no ConfigMap gone/);
    expect(problems).toMatch(/mounts unknown volume nowhere/);
  });

  it("catch retries on a method the protos do not declare idempotent, on a prefix route, or by Istio's default", () => {
    const idempotent = expectations().idempotent;
    expect(idempotent).toContain("/shadowmesh.predict.v1.PredictService/Predict");
    const { objs, find } = copy(withIstio);
    const vs = find("VirtualService", "-model-service");
    const route = vs.spec.http.find((r: Any) => r.mirrors);
    route.match.push({ uri: { exact: "/shadowmesh.predict.v1.PredictService/Train" } });
    const other = vs.spec.http.find((r: Any) => !r.match);
    delete other.retries;
    const problems = checkRetriesIdempotent(objs, idempotent).join("\n");
    expect(problems).toMatch(
      /on \/shadowmesh\.predict\.v1\.PredictService\/Train, which is not declared idempotent/,
    );
    expect(problems).toMatch(/Istio's default: no retries block\) but matches every method/);
    route.match[0] = { uri: { prefix: "/shadowmesh.predict.v1.PredictService/" } };
    expect(checkRetriesIdempotent(objs, idempotent).join()).toMatch(/on a non-exact match/);
  });

  it("read idempotency from the proto options", () => {
    const proto = `syntax = "proto3";
package a.b.v1;
service S {
  rpc Get(R) returns (R) {
    option idempotency_level = NO_SIDE_EFFECTS;
  }
  rpc Put(R) returns (R) {
    option idempotency_level = IDEMPOTENT;
  }
  rpc Post(R) returns (R);
  rpc Stream(R) returns (stream R) {}
}
`;
    expect(idempotentMethods([proto])).toEqual(["/a.b.v1.S/Get", "/a.b.v1.S/Put"]);
  });

  it("catch an AuthorizationPolicy that lets the wrong caller in or keeps the right one out", () => {
    expect(checkZeroTrust(withIstio, NAMESPACE)).toEqual([]);
    const { objs, find } = copy(withIstio);
    const ap = find("AuthorizationPolicy", "-metrics-service");
    // widen: every rule now admits any principal
    for (const rule of ap.spec.rules) for (const f of rule.from ?? []) f.source = { principals: ["*"] };
    expect(checkZeroTrust(objs, NAMESPACE).join("\n")).toMatch(
      /intruder → shadowmesh-metrics-service \S+ReportPredictions: ALLOW, expected DENY/,
    );
    // narrow: drop the model-service policy's rules, so no caller gets in
    find("AuthorizationPolicy", "-model-service").spec.rules = [];
    expect(checkZeroTrust(objs, NAMESPACE).join("\n")).toMatch(
      /shadowmesh-app-service → shadowmesh-model-service-primary \S+\/Predict: DENY, expected ALLOW/,
    );
    // and with no policy at all, Istio allows everything
    const none = copy(withIstio).objs.filter((o) => o.kind !== "AuthorizationPolicy");
    expect(checkZeroTrust(none, NAMESPACE).join("\n")).toMatch(/intruder → \S+ \S+: ALLOW, expected DENY/);
  });
});
