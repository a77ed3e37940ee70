// Cross-object checks on a rendered chart: what a cluster would only tell us after `helm install` (a Service that
// selects nothing, a subset no pod carries, a principal no ServiceAccount has, a probe on a port the container does
// not open). Each check returns human-readable problems; an empty list means it passed. They take plain objects so
// a test can feed them a deliberately broken object and see them fail.
import type { K8sObject } from "./render.js";

// biome-ignore lint/suspicious/noExplicitAny: walking free-form manifests
type Any = any;

export interface Workload {
  obj: K8sObject;
  kind: string;
  name: string;
  /** Labels of the pods it creates. */
  podLabels: Record<string, string>;
  podSpec: Any;
  podAnnotations: Record<string, string>;
  replicas: number | undefined;
}

const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);

export function byKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** Deployments/StatefulSets/… and bare Pods (the helm test hook), with the pod template they stamp out. */
export function workloads(objects: K8sObject[]): Workload[] {
  const out: Workload[] = [];
  for (const obj of objects) {
    if (WORKLOAD_KINDS.has(obj.kind)) {
      const tpl = obj.spec?.template ?? {};
      out.push({
        obj,
        kind: obj.kind,
        name: obj.metadata.name,
        podLabels: tpl.metadata?.labels ?? {},
        podAnnotations: tpl.metadata?.annotations ?? {},
        podSpec: tpl.spec ?? {},
        replicas: obj.spec?.replicas,
      });
    } else if (obj.kind === "Pod") {
      out.push({
        obj,
        kind: "Pod",
        name: obj.metadata.name,
        podLabels: obj.metadata.labels ?? {},
        podAnnotations: obj.metadata.annotations ?? {},
        podSpec: obj.spec ?? {},
        replicas: undefined,
      });
    }
  }
  return out;
}

const isHelmHook = (o: K8sObject) => Boolean(o.metadata.annotations?.["helm.sh/hook"]);

function matches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Pods of long-running workloads (not hook Pods) whose labels a selector matches. */
function selectedWorkloads(objects: K8sObject[], selector: Record<string, string> | undefined): Workload[] {
  return workloads(objects).filter((w) => !isHelmHook(w.obj) && matches(selector, w.podLabels));
}

function allContainers(podSpec: Any): Any[] {
  return [...(podSpec.initContainers ?? []), ...(podSpec.containers ?? [])];
}

/** Service name of an in-cluster host (`x`, `x.ns`, `x.ns.svc`, `x.ns.svc.cluster.local`) in `namespace`. */
export function serviceOfHost(host: string, namespace: string): string | undefined {
  const parts = host.split(".");
  if (parts.length === 1) return parts[0];
  if (parts[1] !== namespace) return undefined;
  const rest = parts.slice(2).join(".");
  return ["", "svc", "svc.cluster.local"].includes(rest) ? parts[0] : undefined;
}

// ---------------------------------------------------------------------------------------------------------------

/** Each Service with a selector selects at least one rendered pod template, and its targetPorts exist there. */
export function checkServicesSelectPods(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const svc of byKind(objects, "Service")) {
    const selector = svc.spec?.selector;
    if (!selector) {
      problems.push(`Service ${svc.metadata.name} has no selector`);
      continue;
    }
    const selected = selectedWorkloads(objects, selector);
    if (selected.length === 0) {
      problems.push(`Service ${svc.metadata.name} selects no pods (selector ${JSON.stringify(selector)})`);
      continue;
    }
    for (const port of svc.spec?.ports ?? []) {
      const target = port.targetPort ?? port.port;
      for (const w of selected) {
        const ok = (w.podSpec.containers ?? []).some((c: Any) =>
          (c.ports ?? []).some((p: Any) => p.name === target || p.containerPort === target),
        );
        if (!ok) {
          problems.push(
            `Service ${svc.metadata.name} port ${port.name ?? port.port} targets ${target}, which ${w.kind} ${w.name} does not open`,
          );
        }
      }
    }
  }
  return problems;
}

/** Each DestinationRule subset's labels match the pods of a workload behind the rule's host. */
export function checkSubsetsMatchWorkloads(objects: K8sObject[], namespace: string): string[] {
  const problems: string[] = [];
  for (const dr of byKind(objects, "DestinationRule")) {
    const svcName = serviceOfHost(dr.spec?.host ?? "", namespace);
    const svc = byKind(objects, "Service").find((s) => s.metadata.name === svcName);
    if (!svc) {
      problems.push(`DestinationRule ${dr.metadata.name}: host ${dr.spec?.host} is not a rendered Service`);
      continue;
    }
    for (const subset of dr.spec?.subsets ?? []) {
      const behind = selectedWorkloads(objects, svc.spec?.selector).filter((w) =>
        matches(subset.labels, w.podLabels),
      );
      if (behind.length === 0) {
        problems.push(
          `DestinationRule ${dr.metadata.name} subset ${subset.name} (${JSON.stringify(subset.labels)}) matches no pods behind Service ${svc.metadata.name}`,
        );
      }
    }
  }
  return problems;
}

/** Every VirtualService destination (routes and mirrors): the host is a rendered Service, the subset exists. */
export function checkVirtualServiceDestinations(objects: K8sObject[], namespace: string): string[] {
  const problems: string[] = [];
  const subsetsOf = (svcName: string) =>
    byKind(objects, "DestinationRule")
      .filter((dr) => serviceOfHost(dr.spec?.host ?? "", namespace) === svcName)
      .flatMap((dr) => (dr.spec?.subsets ?? []).map((s: Any) => s.name as string));
  for (const vs of byKind(objects, "VirtualService")) {
    for (const route of [...(vs.spec?.http ?? []), ...(vs.spec?.tcp ?? []), ...(vs.spec?.tls ?? [])]) {
      const dests: { what: string; d: Any }[] = [
        ...(route.route ?? []).map((r: Any) => ({ what: "route", d: r.destination })),
        ...(route.mirror ? [{ what: "mirror", d: route.mirror }] : []),
        ...(route.mirrors ?? []).map((m: Any) => ({ what: "mirror", d: m.destination })),
      ];
      for (const { what, d } of dests) {
        const svcName = serviceOfHost(d?.host ?? "", namespace);
        const svc = byKind(objects, "Service").find((s) => s.metadata.name === svcName);
        if (!svc) {
          problems.push(
            `VirtualService ${vs.metadata.name} ${what} host ${d?.host} is not a rendered Service`,
          );
          continue;
        }
        if (d.subset && !subsetsOf(svc.metadata.name).includes(d.subset)) {
          problems.push(
            `VirtualService ${vs.metadata.name} ${what} subset ${d.subset} is not in a DestinationRule`,
          );
        }
        if (d.port?.number && !(svc.spec?.ports ?? []).some((p: Any) => p.port === d.port.number)) {
          problems.push(
            `VirtualService ${vs.metadata.name} ${what} port ${d.port.number} is not a port of ${svcName}`,
          );
        }
      }
    }
  }
  return problems;
}

/**
 * Each AuthorizationPolicy principal `cluster.local/ns/<ns>/sa/<name>` in the release namespace is a ServiceAccount
 * the chart renders; one outside it (the ingress gateway, Prometheus) must be among `external` (from the values).
 */
export function checkPrincipals(objects: K8sObject[], namespace: string, external: string[] = []): string[] {
  const problems: string[] = [];
  const accounts = new Set(byKind(objects, "ServiceAccount").map((sa) => sa.metadata.name));
  for (const ap of byKind(objects, "AuthorizationPolicy")) {
    for (const rule of ap.spec?.rules ?? []) {
      for (const from of rule.from ?? []) {
        for (const p of [...(from.source?.principals ?? []), ...(from.source?.notPrincipals ?? [])]) {
          const m = /^cluster\.local\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(p);
          if (external.includes(p)) continue;
          if (!m)
            problems.push(
              `AuthorizationPolicy ${ap.metadata.name}: principal ${p} is not an in-mesh account`,
            );
          else if (m[1] !== namespace)
            problems.push(
              `AuthorizationPolicy ${ap.metadata.name}: ${p} is outside ${namespace} and not in the values`,
            );
          else if (!accounts.has(m[2] as string)) {
            problems.push(`AuthorizationPolicy ${ap.metadata.name}: ${p} is not a rendered ServiceAccount`);
          }
        }
      }
    }
    const selector = ap.spec?.selector?.matchLabels;
    if (selector && selectedWorkloads(objects, selector).length === 0) {
      problems.push(`AuthorizationPolicy ${ap.metadata.name} selects no pods (${JSON.stringify(selector)})`);
    }
  }
  return problems;
}

/** Each probe's port (httpGet/tcpSocket: name or number; grpc: number) is a port the container opens. */
export function checkProbePorts(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const w of workloads(objects)) {
    for (const c of allContainers(w.podSpec)) {
      for (const kind of ["livenessProbe", "readinessProbe", "startupProbe"]) {
        const probe = c[kind];
        if (!probe) continue;
        const port = probe.httpGet?.port ?? probe.tcpSocket?.port ?? probe.grpc?.port;
        if (port === undefined) continue; // exec probe
        const ok = (c.ports ?? []).some((p: Any) => p.name === port || p.containerPort === port);
        if (!ok)
          problems.push(
            `${w.kind} ${w.name} container ${c.name} ${kind} port ${port} is not a container port`,
          );
      }
    }
  }
  return problems;
}

/** Long-running workloads have readiness and liveness probes. */
export function checkProbesPresent(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const w of workloads(objects).filter((w) => w.kind !== "Pod" && w.kind !== "Job")) {
    for (const c of w.podSpec.containers ?? []) {
      for (const kind of ["livenessProbe", "readinessProbe"]) {
        if (!c[kind]) problems.push(`${w.kind} ${w.name} container ${c.name} has no ${kind}`);
      }
    }
  }
  return problems;
}

/** Every image has an explicit tag (or digest) that is not `latest`. */
export function checkImageTags(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const w of workloads(objects)) {
    for (const c of allContainers(w.podSpec)) {
      const image: string = c.image ?? "";
      if (image.includes("@sha256:")) continue;
      const lastSegment = image.slice(image.lastIndexOf("/") + 1);
      const tag = lastSegment.includes(":") ? lastSegment.slice(lastSegment.indexOf(":") + 1) : "";
      if (!image) problems.push(`${w.kind} ${w.name} container ${c.name} has no image`);
      else if (tag === "") problems.push(`${w.kind} ${w.name} container ${c.name} image ${image} has no tag`);
      else if (tag === "latest")
        problems.push(`${w.kind} ${w.name} container ${c.name} image ${image} uses latest`);
    }
  }
  return problems;
}

/**
 * Every container (init containers and hook Pods included) has cpu/memory requests and a memory limit, and the
 * restrictive security settings: non-root, read-only root filesystem, no privilege escalation, drop ALL, not
 * privileged, RuntimeDefault seccomp (container or pod level).
 */
export function checkContainerHardening(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const w of workloads(objects)) {
    const pod = w.podSpec.securityContext ?? {};
    if (w.podSpec.hostNetwork || w.podSpec.hostPID || w.podSpec.hostIPC) {
      problems.push(`${w.kind} ${w.name} uses host namespaces`);
    }
    for (const c of allContainers(w.podSpec)) {
      const at = `${w.kind} ${w.name} container ${c.name}`;
      const r = c.resources ?? {};
      if (!r.requests?.cpu || !r.requests?.memory) problems.push(`${at} has no cpu/memory requests`);
      if (!r.limits?.memory) problems.push(`${at} has no memory limit`);
      const sc = c.securityContext ?? {};
      const runAsNonRoot = sc.runAsNonRoot ?? pod.runAsNonRoot;
      const runAsUser = sc.runAsUser ?? pod.runAsUser;
      if (runAsNonRoot !== true) problems.push(`${at} does not set runAsNonRoot: true`);
      if (runAsUser === 0) problems.push(`${at} runs as uid 0`);
      if (sc.readOnlyRootFilesystem !== true)
        problems.push(`${at} does not set readOnlyRootFilesystem: true`);
      if (sc.allowPrivilegeEscalation !== false)
        problems.push(`${at} does not set allowPrivilegeEscalation: false`);
      if (sc.privileged === true) problems.push(`${at} is privileged`);
      if (!(sc.capabilities?.drop ?? []).includes("ALL"))
        problems.push(`${at} does not drop ALL capabilities`);
      if ((sc.capabilities?.add ?? []).length > 0) problems.push(`${at} adds capabilities`);
      const seccomp = sc.seccompProfile?.type ?? pod.seccompProfile?.type;
      if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") {
        problems.push(`${at} has no RuntimeDefault seccomp profile`);
      }
    }
  }
  return problems;
}

/** Each long-running workload runs as its own rendered, non-default ServiceAccount; Pods name a rendered one. */
export function checkServiceAccounts(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const accounts = new Set(byKind(objects, "ServiceAccount").map((sa) => sa.metadata.name));
  const users = new Map<string, string[]>();
  for (const w of workloads(objects)) {
    const sa: string | undefined = w.podSpec.serviceAccountName;
    if (w.kind === "Pod" && sa === undefined) continue; // a hook Pod may use the namespace default with no token
    if (!sa || sa === "default") {
      problems.push(`${w.kind} ${w.name} runs as the namespace's default ServiceAccount`);
      continue;
    }
    if (!accounts.has(sa))
      problems.push(`${w.kind} ${w.name} uses ServiceAccount ${sa}, which is not rendered`);
    if (w.kind !== "Pod") users.set(sa, [...(users.get(sa) ?? []), `${w.kind} ${w.name}`]);
  }
  for (const [sa, ws] of users) {
    if (ws.length > 1) problems.push(`ServiceAccount ${sa} is shared by ${ws.join(", ")}`);
  }
  return problems;
}

/** The highest replica count a workload can run at: `replicas`, or its HPA's maxReplicas. */
function maxReplicas(objects: K8sObject[], w: Workload): number {
  const hpa = byKind(objects, "HorizontalPodAutoscaler").find(
    (h) => h.spec?.scaleTargetRef?.kind === w.kind && h.spec?.scaleTargetRef?.name === w.name,
  );
  if (hpa) return Math.max(hpa.spec?.maxReplicas ?? 1, w.replicas ?? 1);
  return w.replicas ?? 1;
}

/** Whenever a workload can run more than one replica, a PodDisruptionBudget covers its pods and allows evictions. */
export function checkDisruptionBudgets(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const pdbs = byKind(objects, "PodDisruptionBudget");
  for (const w of workloads(objects).filter((w) => w.kind === "Deployment" || w.kind === "StatefulSet")) {
    const max = maxReplicas(objects, w);
    const covering = pdbs.filter((p) => matches(p.spec?.selector?.matchLabels, w.podLabels));
    if (max > 1 && covering.length === 0)
      problems.push(`${w.kind} ${w.name} can run ${max} replicas but has no PDB`);
    const replicas = w.replicas ?? 1;
    for (const p of covering) {
      if (typeof p.spec?.minAvailable === "number" && p.spec.minAvailable >= replicas) {
        problems.push(
          `PDB ${p.metadata.name} minAvailable ${p.spec.minAvailable} blocks every eviction of ${w.name}`,
        );
      }
      if (p.spec?.maxUnavailable === 0)
        problems.push(`PDB ${p.metadata.name} maxUnavailable 0 blocks every eviction`);
    }
  }
  for (const p of pdbs) {
    if (selectedWorkloads(objects, p.spec?.selector?.matchLabels).length === 0) {
      problems.push(`PDB ${p.metadata.name} selects no pods`);
    }
  }
  return problems;
}

/** Each long-running workload's pod template carries a `checksum/…` annotation (rolls pods on config change). */
export function checkChecksumAnnotations(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const w of workloads(objects).filter((w) => w.kind === "Deployment" || w.kind === "StatefulSet")) {
    const sums = Object.entries(w.podAnnotations).filter(([k]) => k.startsWith("checksum/"));
    if (sums.length === 0)
      problems.push(`${w.kind} ${w.name} has no checksum/ annotation on its pod template`);
    for (const [k, v] of sums) {
      if (!/^[0-9a-f]{64}$/.test(String(v))) problems.push(`${w.kind} ${w.name} ${k} is not a sha256: ${v}`);
    }
  }
  return problems;
}

/** The value of an env var of a container: inline `value`, or from a rendered ConfigMap (valueFrom / envFrom). */
export function envValue(objects: K8sObject[], container: Any, name: string): string | undefined {
  const configMap = (cmName: string) => byKind(objects, "ConfigMap").find((c) => c.metadata.name === cmName);
  const entry = (container.env ?? []).find((e: Any) => e.name === name);
  if (entry) {
    if (entry.value !== undefined) return String(entry.value);
    const ref = entry.valueFrom?.configMapKeyRef;
    if (ref) return configMap(ref.name)?.data?.[ref.key];
    return undefined;
  }
  for (const from of container.envFrom ?? []) {
    const prefix: string = from.prefix ?? "";
    const cm = from.configMapRef ? configMap(from.configMapRef.name) : undefined;
    const v = name.startsWith(prefix) ? cm?.data?.[name.slice(prefix.length)] : undefined;
    if (v !== undefined) return String(v);
  }
  return undefined;
}

/** Every env var the container has, resolved (inline values and ConfigMap references). */
export function envNames(objects: K8sObject[], container: Any): string[] {
  const names = new Set<string>((container.env ?? []).map((e: Any) => e.name));
  for (const from of container.envFrom ?? []) {
    const cm = byKind(objects, "ConfigMap").find((c) => c.metadata.name === from.configMapRef?.name);
    for (const k of Object.keys(cm?.data ?? {})) names.add(`${from.prefix ?? ""}${k}`);
  }
  return [...names];
}

/**
 * terminationGracePeriodSeconds exceeds each service's shutdown delay + timeout (`*_SHUTDOWN_DELAY_MS`,
 * `*_SHUTDOWN_TIMEOUT_MS`), which the chart must set explicitly for every long-running service container.
 */
export function checkTerminationGrace(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const w of workloads(objects).filter((w) => w.kind === "Deployment" || w.kind === "StatefulSet")) {
    const grace: number = w.podSpec.terminationGracePeriodSeconds ?? 30;
    for (const c of w.podSpec.containers ?? []) {
      const names = envNames(objects, c);
      const delayName = names.find((n) => n.endsWith("_SHUTDOWN_DELAY_MS"));
      const timeoutName = names.find((n) => n.endsWith("_SHUTDOWN_TIMEOUT_MS"));
      if (!delayName || !timeoutName) {
        problems.push(
          `${w.kind} ${w.name} container ${c.name} does not set *_SHUTDOWN_DELAY_MS and *_SHUTDOWN_TIMEOUT_MS`,
        );
        continue;
      }
      const delay = Number(envValue(objects, c, delayName));
      const timeout = Number(envValue(objects, c, timeoutName));
      if (!Number.isFinite(delay) || !Number.isFinite(timeout)) {
        problems.push(`${w.kind} ${w.name} container ${c.name}: shutdown settings are not numbers`);
      } else if (grace * 1000 <= delay + timeout) {
        problems.push(
          `${w.kind} ${w.name}: terminationGracePeriodSeconds ${grace}s does not exceed ${delayName} ${delay} + ${timeoutName} ${timeout} ms`,
        );
      }
    }
  }
  return problems;
}

/** Every object lives in the release namespace (or leaves it to helm), and no two objects share kind + name. */
export function checkNamespacesAndNames(objects: K8sObject[], namespace: string): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const o of objects) {
    const ns = o.metadata.namespace;
    if (ns !== undefined && ns !== namespace)
      problems.push(`${o.kind} ${o.metadata.name} is in namespace ${ns}`);
    const key = `${o.apiVersion}/${o.kind}/${o.metadata.name}`;
    if (seen.has(key)) problems.push(`${o.kind} ${o.metadata.name} is rendered twice`);
    seen.add(key);
  }
  return problems;
}

/** ConfigMaps, Secrets and PVC claims that pods reference are rendered (or come from a StatefulSet's claim templates). */
export function checkReferences(objects: K8sObject[], allowedSecrets: string[] = []): string[] {
  const problems: string[] = [];
  const names = (kind: string) => new Set(byKind(objects, kind).map((o) => o.metadata.name));
  const configMaps = names("ConfigMap");
  const secrets = new Set([...names("Secret"), ...allowedSecrets]);
  for (const w of workloads(objects)) {
    const at = `${w.kind} ${w.name}`;
    const volumes = new Set<string>((w.podSpec.volumes ?? []).map((v: Any) => v.name));
    for (const t of w.obj.spec?.volumeClaimTemplates ?? []) volumes.add(t.metadata?.name);
    for (const v of w.podSpec.volumes ?? []) {
      if (v.configMap && !configMaps.has(v.configMap.name))
        problems.push(`${at} volume ${v.name}: no ConfigMap ${v.configMap.name}`);
      if (v.secret && !secrets.has(v.secret.secretName))
        problems.push(`${at} volume ${v.name}: no Secret ${v.secret.secretName}`);
    }
    for (const c of allContainers(w.podSpec)) {
      for (const m of c.volumeMounts ?? []) {
        if (!volumes.has(m.name)) problems.push(`${at} container ${c.name} mounts unknown volume ${m.name}`);
      }
      for (const e of c.env ?? []) {
        const cm = e.valueFrom?.configMapKeyRef;
        const sec = e.valueFrom?.secretKeyRef;
        if (cm && !cm.optional) {
          const map = byKind(objects, "ConfigMap").find((o) => o.metadata.name === cm.name);
          if (!map || map.data?.[cm.key] === undefined)
            problems.push(`${at} env ${e.name}: no ConfigMap key ${cm.name}/${cm.key}`);
        }
        if (sec && !sec.optional) {
          const s = byKind(objects, "Secret").find((o) => o.metadata.name === sec.name);
          const has = s && (s.data?.[sec.key] !== undefined || s.stringData?.[sec.key] !== undefined);
          if (!has && !allowedSecrets.includes(sec.name))
            problems.push(`${at} env ${e.name}: no Secret key ${sec.name}/${sec.key}`);
        }
      }
      for (const from of c.envFrom ?? []) {
        if (from.configMapRef && !configMaps.has(from.configMapRef.name))
          problems.push(`${at} envFrom: no ConfigMap ${from.configMapRef.name}`);
        if (from.secretRef && !secrets.has(from.secretRef.name))
          problems.push(`${at} envFrom: no Secret ${from.secretRef.name}`);
      }
    }
  }
  return problems;
}

/**
 * Every `*_ADDRESS` env var (`host:port`) names a rendered Service in the release namespace and one of its ports.
 * An empty value is allowed (it switches the feature off, e.g. APP_SERVICE_SHADOW_ADDRESS with Istio).
 */
export function checkAddresses(objects: K8sObject[], namespace: string): string[] {
  const problems: string[] = [];
  for (const w of workloads(objects)) {
    for (const c of allContainers(w.podSpec)) {
      for (const name of envNames(objects, c).filter((n) => n.endsWith("_ADDRESS"))) {
        const value = envValue(objects, c, name);
        if (value === undefined || value === "") continue;
        const m = /^(?:[a-z]+:\/\/)?([^:/]+):(\d+)$/.exec(value);
        if (!m) {
          problems.push(`${w.kind} ${w.name} ${name}=${value} is not host:port`);
          continue;
        }
        const svcName = serviceOfHost(m[1] as string, namespace);
        const svc = byKind(objects, "Service").find((s) => s.metadata.name === svcName);
        if (!svc) problems.push(`${w.kind} ${w.name} ${name}=${value}: ${m[1]} is not a rendered Service`);
        else if (!(svc.spec?.ports ?? []).some((p: Any) => p.port === Number(m[2]))) {
          problems.push(`${w.kind} ${w.name} ${name}=${value}: Service ${svcName} has no port ${m[2]}`);
        }
      }
    }
  }
  return problems;
}

/** The checks that hold for every value set. */
export function genericChecks(
  objects: K8sObject[],
  namespace: string,
  {
    externalPrincipals = [],
    externalSecrets = [],
    idempotent = [],
  }: { externalPrincipals?: string[]; externalSecrets?: string[]; idempotent?: string[] } = {},
): Record<string, string[]> {
  return {
    servicesSelectPods: checkServicesSelectPods(objects),
    subsetsMatchWorkloads: checkSubsetsMatchWorkloads(objects, namespace),
    virtualServiceDestinations: checkVirtualServiceDestinations(objects, namespace),
    principals: checkPrincipals(objects, namespace, externalPrincipals),
    probePorts: checkProbePorts(objects),
    probesPresent: checkProbesPresent(objects),
    imageTags: checkImageTags(objects),
    containerHardening: checkContainerHardening(objects),
    serviceAccounts: checkServiceAccounts(objects),
    disruptionBudgets: checkDisruptionBudgets(objects),
    checksumAnnotations: checkChecksumAnnotations(objects),
    terminationGrace: checkTerminationGrace(objects),
    namespacesAndNames: checkNamespacesAndNames(objects, namespace),
    references: checkReferences(objects, externalSecrets),
    addresses: checkAddresses(objects, namespace),
    retriesIdempotent: checkRetriesIdempotent(objects, idempotent),
  };
}

// --- checks that depend on the value set -----------------------------------------------------------------------

function containerWithEnv(objects: K8sObject[], envName: string): { w: Workload; c: Any }[] {
  const out: { w: Workload; c: Any }[] = [];
  for (const w of workloads(objects).filter((w) => !isHelmHook(w.obj))) {
    for (const c of w.podSpec.containers ?? [])
      if (envNames(objects, c).includes(envName)) out.push({ w, c });
  }
  return out;
}

/** The model-service Deployments by the role their values give them (`MODEL_SERVICE_ROLE`). */
export function modelServices(objects: K8sObject[]): {
  primary: Workload[];
  shadow: Workload[];
  other: Workload[];
} {
  const result = { primary: [] as Workload[], shadow: [] as Workload[], other: [] as Workload[] };
  for (const { w, c } of containerWithEnv(objects, "MODEL_SERVICE_ROLE")) {
    const role = envValue(objects, c, "MODEL_SERVICE_ROLE");
    if (role === "PRIMARY") result.primary.push(w);
    else if (role === "SHADOW") result.shadow.push(w);
    else result.other.push(w);
  }
  return result;
}

/** The pod label that names the candidate a SHADOW model-service serves. */
export const CANDIDATE_LABEL = "shadowmesh.io/candidate";

/** A candidate the checks expect: its name, and (when known) its model directory, version and mirror share. */
export interface CandidateExpectation {
  name: string;
  model?: string;
  version?: string;
  percent?: number;
}

/** The SHADOW model-services whose pods carry the candidate's name. */
export function candidateWorkloads(objects: K8sObject[], name: string): Workload[] {
  return modelServices(objects).shadow.filter((w) => w.podLabels[CANDIDATE_LABEL] === name);
}

/**
 * One primary and one SHADOW model-service Deployment per candidate (`true`: exactly one, `false`: none), each with
 * the `app` and `version` labels Istio and Kiali expect (same app, a different version each) and the recommended
 * `app.kubernetes.io/*` labels; each candidate's pods carry its name (`shadowmesh.io/candidate`) and serve its model.
 */
export function checkModelServiceRoles(
  objects: K8sObject[],
  candidates: boolean | CandidateExpectation[],
): string[] {
  const problems: string[] = [];
  const ms = modelServices(objects);
  if (ms.primary.length !== 1) problems.push(`expected 1 PRIMARY model-service, found ${ms.primary.length}`);
  const wanted = typeof candidates === "boolean" ? (candidates ? 1 : 0) : candidates.length;
  if (ms.shadow.length !== wanted) {
    problems.push(`expected ${wanted} SHADOW model-service, found ${ms.shadow.length}`);
  }
  const seen = new Map<string, string>();
  for (const w of ms.shadow) {
    const name = w.podLabels[CANDIDATE_LABEL];
    if (!name) {
      problems.push(`${w.kind} ${w.name} pods have no ${CANDIDATE_LABEL} label`);
      continue;
    }
    if (seen.has(name))
      problems.push(`${w.kind} ${w.name} and ${seen.get(name)} both serve candidate ${name}`);
    seen.set(name, w.name);
  }
  if (Array.isArray(candidates)) {
    for (const c of candidates) {
      const ws = candidateWorkloads(objects, c.name);
      if (ws.length !== 1) {
        problems.push(`candidate ${c.name}: expected 1 SHADOW model-service, found ${ws.length}`);
        continue;
      }
      const w = ws[0] as Workload;
      const container = (w.podSpec.containers ?? []).find((x: Any) =>
        envNames(objects, x).includes("MODEL_SERVICE_ROLE"),
      );
      const dir = envValue(objects, container, "MODEL_SERVICE_MODEL_DIR");
      if (c.model !== undefined && dir !== c.model)
        problems.push(`candidate ${c.name}: MODEL_SERVICE_MODEL_DIR is ${dir}, values say ${c.model}`);
      if (c.version !== undefined && w.podLabels.version !== c.version)
        problems.push(
          `candidate ${c.name}: pods have version ${w.podLabels.version}, values say ${c.version}`,
        );
    }
    for (const name of seen.keys()) {
      if (!candidates.some((c) => c.name === name))
        problems.push(`candidate ${name} is rendered but not in the values`);
    }
  }
  for (const w of ms.other)
    problems.push(`${w.kind} ${w.name} has MODEL_SERVICE_ROLE that is neither PRIMARY nor SHADOW`);
  const all = [...ms.primary, ...ms.shadow];
  for (const w of all) {
    for (const l of [
      "app",
      "version",
      "app.kubernetes.io/name",
      "app.kubernetes.io/instance",
      "app.kubernetes.io/version",
    ]) {
      if (!w.podLabels[l]) problems.push(`${w.kind} ${w.name} pods have no ${l} label`);
    }
    const c = (w.podSpec.containers ?? []).find((c: Any) =>
      envNames(objects, c).includes("MODEL_SERVICE_ROLE"),
    );
    if (!envValue(objects, c, "MODEL_SERVICE_MODEL_DIR"))
      problems.push(`${w.kind} ${w.name} has no MODEL_SERVICE_MODEL_DIR`);
    const instance = (c.env ?? []).find((e: Any) => e.name === "MODEL_SERVICE_INSTANCE");
    if (instance?.valueFrom?.fieldRef?.fieldPath !== "metadata.name") {
      problems.push(`${w.kind} ${w.name} MODEL_SERVICE_INSTANCE is not the pod name (downward API)`);
    }
  }
  if (new Set(all.map((w) => w.podLabels.app)).size > 1)
    problems.push("primary and shadow pods differ in the app label");
  if (new Set(all.map((w) => w.podLabels.version)).size < all.length) {
    problems.push(
      `model-service pods share a version label (${all.map((w) => `${w.name}: ${w.podLabels.version}`).join(", ")})`,
    );
  }
  return problems;
}

function onlySelects(
  objects: K8sObject[],
  selector: Record<string, string> | undefined,
  wanted: Workload[],
): boolean {
  const selected = selectedWorkloads(objects, selector);
  return selected.length > 0 && selected.every((w) => wanted.some((x) => x.obj === w.obj));
}

/** A subset's labels, as applied behind its host's Service. */
function subsetSelector(objects: K8sObject[], namespace: string, d: Any): Record<string, string> | undefined {
  const svcName = serviceOfHost(d?.host ?? "", namespace);
  const svc = byKind(objects, "Service").find((s) => s.metadata.name === svcName);
  if (!svc) return undefined;
  const subset = byKind(objects, "DestinationRule")
    .filter((dr) => serviceOfHost(dr.spec?.host ?? "", namespace) === svcName)
    .flatMap((dr) => dr.spec?.subsets ?? [])
    .find((s: Any) => s.name === d.subset);
  return { ...(svc.spec?.selector ?? {}), ...(subset?.labels ?? {}) };
}

/** `name=percent,…` (METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS) as a map; malformed entries are reported. */
export function parseMirrorPercents(value: string, problems: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const entry of value.split(",").filter((e) => e !== "")) {
    const m = /^([^=\s]+)=(\d+(?:\.\d+)?)$/.exec(entry);
    if (!m)
      problems.push(
        `METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS entry ${JSON.stringify(entry)} is not name=percent`,
      );
    else if (out.has(m[1] as string))
      problems.push(`METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS names ${m[1]} twice`);
    else out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

/**
 * Mirroring as the values say, per candidate. With Istio: the VirtualService routes only to a subset that holds only
 * the primary's pods, and its `mirrors` list has one entry per mirrored candidate (share above 0), whose subset holds
 * exactly that candidate's pods and whose percentage is the candidate's; no other mirror; app-service does not mirror
 * itself (empty APP_SERVICE_SHADOW_ADDRESS). Without Istio: no Istio object at all; app-service calls a Service that
 * selects only the primary's pods and mirrors the candidate's share to a Service that selects only the candidate's
 * (one candidate at most). Either way metrics-service expects each candidate's share
 * (METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS) and `percent` for others (METRICS_SERVICE_EXPECTED_MIRROR_PERCENT).
 * Without `candidates`, every rendered candidate is expected at `percent`.
 */
export function checkMirroring(
  objects: K8sObject[],
  namespace: string,
  { istio, percent, candidates }: { istio: boolean; percent: number; candidates?: CandidateExpectation[] },
): string[] {
  const problems: string[] = [];
  const ms = modelServices(objects);
  const expected: { name: string; percent: number }[] = candidates
    ? candidates.map((c) => ({ name: c.name, percent: c.percent ?? percent }))
    : [...new Set(ms.shadow.map((w) => w.podLabels[CANDIDATE_LABEL] ?? w.name))].map((name) => ({
        name,
        percent,
      }));
  const app = containerWithEnv(objects, "APP_SERVICE_MODEL_SERVICE_ADDRESS");
  const metrics = containerWithEnv(objects, "METRICS_SERVICE_EXPECTED_MIRROR_PERCENT");
  if (app.length !== 1) problems.push(`expected 1 app-service container, found ${app.length}`);
  if (metrics.length !== 1)
    problems.push(
      `expected 1 metrics-service container with METRICS_SERVICE_EXPECTED_MIRROR_PERCENT, found ${metrics.length}`,
    );
  for (const { w, c } of metrics) {
    const v = Number(envValue(objects, c, "METRICS_SERVICE_EXPECTED_MIRROR_PERCENT"));
    if (v !== percent)
      problems.push(
        `${w.kind} ${w.name} METRICS_SERVICE_EXPECTED_MIRROR_PERCENT is ${v}, values say ${percent}`,
      );
    const listed = envValue(objects, c, "METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS");
    if (listed === undefined) {
      problems.push(`${w.kind} ${w.name} has no METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS`);
    } else {
      const shares = parseMirrorPercents(listed, problems);
      const want = new Map(expected.map((e) => [e.name, e.percent]));
      for (const [name, share] of want) {
        if (shares.get(name) !== share)
          problems.push(
            `METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS gives ${name} ${shares.get(name) ?? "nothing"}, values say ${share}`,
          );
      }
      for (const name of shares.keys()) {
        if (!want.has(name))
          problems.push(`METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS names ${name}, no candidate`);
      }
    }
  }
  const appEnv = (name: string) => (app[0] ? envValue(objects, app[0].c, name) : undefined);
  const serviceOfAddress = (address: string | undefined) => {
    const host = /^([^:]+):\d+$/.exec(address ?? "")?.[1] ?? "";
    return byKind(objects, "Service").find((s) => s.metadata.name === serviceOfHost(host, namespace));
  };
  const mirroredNames = expected.filter((e) => e.percent > 0);
  if (istio) {
    if (appEnv("APP_SERVICE_SHADOW_ADDRESS")) {
      problems.push(
        `with Istio app-service must not mirror, but APP_SERVICE_SHADOW_ADDRESS=${appEnv("APP_SERVICE_SHADOW_ADDRESS")}`,
      );
    }
    const mirroredTo = new Map<string, number>();
    for (const vs of byKind(objects, "VirtualService")) {
      for (const route of vs.spec?.http ?? []) {
        const where = `VirtualService ${vs.metadata.name} route ${route.name ?? "?"}`;
        if (route.mirror)
          problems.push(`${where} uses the single \`mirror\`; candidates are mirrored with \`mirrors\``);
        const mirrors: Any[] = route.mirrors ?? [];
        if (mirrors.length === 0) continue;
        for (const m of mirrors) {
          const d = m.destination;
          const pct = m.percentage?.value;
          const selector = subsetSelector(objects, namespace, d);
          const target = expected.find((e) =>
            onlySelects(objects, selector, candidateWorkloads(objects, e.name)),
          );
          if (!target) {
            problems.push(
              `${where} mirror ${d?.host}/${d?.subset} does not select exactly one candidate's pods`,
            );
            continue;
          }
          mirroredTo.set(target.name, (mirroredTo.get(target.name) ?? 0) + 1);
          if (pct !== target.percent)
            problems.push(
              `${where} mirrors ${pct ?? "100 (unset)"} % to ${target.name}, values say ${target.percent}`,
            );
        }
        for (const r of route.route ?? []) {
          if (!onlySelects(objects, subsetSelector(objects, namespace, r.destination), ms.primary)) {
            problems.push(
              `${where} routes to ${r.destination?.host}/${r.destination?.subset}, not only the primary's pods`,
            );
          }
        }
      }
    }
    for (const e of expected) {
      const n = mirroredTo.get(e.name) ?? 0;
      const want = e.percent > 0 ? 1 : 0;
      if (n !== want)
        problems.push(`candidate ${e.name} (${e.percent} %) is mirrored by ${n} entries, expected ${want}`);
    }
  } else {
    for (const o of objects.filter((o) => /\.istio\.io\//.test(o.apiVersion))) {
      problems.push(`with Istio off the chart renders ${o.kind} ${o.metadata.name}`);
    }
    const primarySvc = serviceOfAddress(appEnv("APP_SERVICE_MODEL_SERVICE_ADDRESS"));
    if (!primarySvc || !onlySelects(objects, primarySvc.spec?.selector, ms.primary)) {
      problems.push(
        `APP_SERVICE_MODEL_SERVICE_ADDRESS=${appEnv("APP_SERVICE_MODEL_SERVICE_ADDRESS")} does not name a primary-only Service`,
      );
    }
    if (expected.length > 1)
      problems.push(`with Istio off app-service mirrors one candidate, values list ${expected.length}`);
    const only = expected[0];
    if (only && mirroredNames.length > 0) {
      const shadowSvc = serviceOfAddress(appEnv("APP_SERVICE_SHADOW_ADDRESS"));
      if (
        !shadowSvc ||
        !onlySelects(objects, shadowSvc.spec?.selector, candidateWorkloads(objects, only.name))
      ) {
        problems.push(
          `APP_SERVICE_SHADOW_ADDRESS=${appEnv("APP_SERVICE_SHADOW_ADDRESS")} does not name a shadow-only Service of candidate ${only.name}`,
        );
      }
      const pct = Number(appEnv("APP_SERVICE_MIRROR_PERCENT"));
      if (pct !== only.percent)
        problems.push(`APP_SERVICE_MIRROR_PERCENT is ${pct}, values say ${only.percent}`);
    }
  }
  return problems;
}

/** Replica counts as the values say; with an HPA the Deployment leaves `replicas` unset and the HPA targets it. */
export function checkReplicas(
  objects: K8sObject[],
  expected: {
    name: (w: Workload) => boolean;
    label: string;
    replicas?: number;
    hpa?: { min: number; max: number };
  }[],
): string[] {
  const problems: string[] = [];
  for (const e of expected) {
    const ws = workloads(objects).filter((w) => !isHelmHook(w.obj) && e.name(w));
    if (ws.length !== 1) {
      problems.push(`${e.label}: expected one workload, found ${ws.length}`);
      continue;
    }
    const w = ws[0] as Workload;
    const hpa = byKind(objects, "HorizontalPodAutoscaler").find(
      (h) => h.spec?.scaleTargetRef?.kind === w.kind && h.spec?.scaleTargetRef?.name === w.name,
    );
    if (e.hpa) {
      if (!hpa) problems.push(`${e.label}: no HorizontalPodAutoscaler targets ${w.kind} ${w.name}`);
      else if (hpa.spec.minReplicas !== e.hpa.min || hpa.spec.maxReplicas !== e.hpa.max) {
        problems.push(
          `${e.label}: HPA ${hpa.spec.minReplicas}..${hpa.spec.maxReplicas}, expected ${e.hpa.min}..${e.hpa.max}`,
        );
      }
      if (w.replicas !== undefined)
        problems.push(`${e.label}: ${w.kind} ${w.name} sets replicas although an HPA scales it`);
    } else {
      if (hpa) problems.push(`${e.label}: unexpected HPA ${hpa.metadata.name}`);
      if ((w.replicas ?? 1) !== e.replicas)
        problems.push(`${e.label}: replicas ${w.replicas}, expected ${e.replicas}`);
    }
  }
  return problems;
}

/**
 * `/package.Service/Method` of every RPC declared `idempotency_level = NO_SIDE_EFFECTS` or `IDEMPOTENT` in the
 * given .proto sources.
 */
export function idempotentMethods(protoSources: string[]): string[] {
  const out: string[] = [];
  for (const src of protoSources) {
    const pkg = /^\s*package\s+([\w.]+)\s*;/m.exec(src)?.[1];
    for (const svc of src.matchAll(/service\s+(\w+)\s*\{([\s\S]*?)\n\}/g)) {
      for (const rpc of (svc[2] as string).matchAll(
        /rpc\s+(\w+)\s*\([^)]*\)\s*returns\s*\([^)]*\)\s*(\{[^}]*\}|;)/g,
      )) {
        if (/idempotency_level\s*=\s*(NO_SIDE_EFFECTS|IDEMPOTENT)/.test(rpc[2] as string)) {
          out.push(`/${pkg ? `${pkg}.` : ""}${svc[1]}/${rpc[1]}`);
        }
      }
    }
  }
  return out;
}

/**
 * Retries only where the method is idempotent: an HTTP route that may retry (explicit attempts > 0, or no
 * `retries` at all, which gets Istio's default of 2 attempts) must match only `exact` paths of methods the protos
 * declare idempotent. A prefix or catch-all route would also retry methods added later.
 */
export function checkRetriesIdempotent(objects: K8sObject[], idempotent: string[]): string[] {
  const problems: string[] = [];
  for (const vs of byKind(objects, "VirtualService")) {
    for (const route of vs.spec?.http ?? []) {
      const attempts = route.retries === undefined ? 2 : (route.retries.attempts ?? 0);
      if (attempts === 0) continue;
      const where = `VirtualService ${vs.metadata.name} route ${route.name ?? "?"} retries ${attempts}×${route.retries === undefined ? " (Istio's default: no retries block)" : ""}`;
      const matches: Any[] = route.match ?? [];
      if (matches.length === 0) {
        problems.push(`${where} but matches every method`);
        continue;
      }
      for (const m of matches) {
        const exact = m.uri?.exact;
        if (typeof exact !== "string")
          problems.push(`${where} on a non-exact match ${JSON.stringify(m.uri ?? m)}`);
        else if (!idempotent.includes(exact))
          problems.push(`${where} on ${exact}, which is not declared idempotent`);
      }
    }
  }
  return problems;
}

function pathMatches(pattern: string, path: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith("*")) return path.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith("*")) return path.endsWith(pattern.slice(1));
  return pattern === path;
}

function anyMatch(patterns: string[] | undefined, value: string): boolean {
  return (patterns ?? []).some((p) => pathMatches(p, value));
}

/** Whether one AuthorizationPolicy rule matches a request (the fields this chart can use; others throw). */
function ruleMatches(rule: Any, req: { principal: string; path: string; port: number }): boolean {
  for (const k of Object.keys(rule))
    if (!["from", "to"].includes(k)) throw new Error(`rule field ${k} not modelled`);
  const fromOk =
    !rule.from ||
    rule.from.some(({ source = {} }: Any) => {
      for (const k of Object.keys(source)) {
        if (!["principals", "notPrincipals"].includes(k)) throw new Error(`source field ${k} not modelled`);
      }
      return (
        (!source.principals || anyMatch(source.principals, req.principal)) &&
        (!source.notPrincipals || !anyMatch(source.notPrincipals, req.principal))
      );
    });
  const toOk =
    !rule.to ||
    rule.to.some(({ operation = {} }: Any) => {
      for (const k of Object.keys(operation)) {
        if (!["paths", "notPaths", "ports", "notPorts", "methods"].includes(k)) {
          throw new Error(`operation field ${k} not modelled`);
        }
      }
      return (
        (!operation.paths || anyMatch(operation.paths, req.path)) &&
        (!operation.notPaths || !anyMatch(operation.notPaths, req.path)) &&
        (!operation.ports || operation.ports.map(String).includes(String(req.port))) &&
        !operation.notPorts?.map(String).includes(String(req.port)) &&
        (!operation.methods || operation.methods.includes("POST"))
      );
    });
  return fromOk && toOk;
}

/**
 * Istio's decision for a gRPC/Connect call (POST `path` on `port`) from `principal` to the pods of `workload`:
 * a matching DENY policy denies; otherwise with no ALLOW policy selecting the pods everything is allowed; with some,
 * one must match. Policies without a selector apply to the whole namespace.
 */
export function authorize(
  objects: K8sObject[],
  req: { principal: string; workload: Workload; path: string; port: number },
): "ALLOW" | "DENY" {
  const policies = byKind(objects, "AuthorizationPolicy").filter((ap) => {
    const sel = ap.spec?.selector?.matchLabels;
    return !sel || matches(sel, req.workload.podLabels);
  });
  const action = (ap: K8sObject) => ap.spec?.action ?? "ALLOW";
  const hit = (ap: K8sObject) => (ap.spec?.rules ?? []).some((r: Any) => ruleMatches(r, req));
  if (policies.some((ap) => action(ap) === "DENY" && hit(ap))) return "DENY";
  const allows = policies.filter((ap) => action(ap) === "ALLOW");
  if (allows.length === 0) return "ALLOW";
  return allows.some(hit) ? "ALLOW" : "DENY";
}

const PREDICT = "/shadowmesh.predict.v1.PredictService/";
const METRICS = "/shadowmesh.metrics.v1.MetricsService/";

/**
 * Zero trust as the issue asks, evaluated on the rendered AuthorizationPolicies: only app-service calls
 * PredictService (the mirror arrives with its identity too), only the model-services report predictions, only
 * app-service calls the browser-facing MetricsService methods, the test Pod reaches model-service only through
 * app-service, and an unknown workload of the same namespace is refused everywhere.
 */
export function checkZeroTrust(
  objects: K8sObject[],
  namespace: string,
  trustDomain = "cluster.local",
): string[] {
  const problems: string[] = [];
  const ms = modelServices(objects);
  const find = (env: string) => containerWithEnv(objects, env)[0]?.w;
  const app = find("APP_SERVICE_MODEL_SERVICE_ADDRESS");
  const metrics = find("METRICS_SERVICE_DATA_DIR");
  const test = workloads(objects).find((w) => w.kind === "Pod" && isHelmHook(w.obj));
  const primary = ms.primary[0];
  if (!app || !metrics || !primary) return ["app-service, metrics-service or the primary is not rendered"];
  const principal = (w: Workload | string): string =>
    typeof w === "string"
      ? `${trustDomain}/ns/${namespace}/sa/${w}`
      : principal(w.podSpec.serviceAccountName);
  const servingPort = (w: Workload) => {
    const ports: Any[] = (w.podSpec.containers?.[0]?.ports ?? []) as Any[];
    return (ports.find((p) => /grpc|http/.test(p.name ?? "") && !/metrics/.test(p.name ?? "")) ?? ports[0])
      ?.containerPort;
  };
  const cases: [Workload | string, Workload, string, "ALLOW" | "DENY"][] = [
    [app, primary, `${PREDICT}Predict`, "ALLOW"],
    [app, primary, `${PREDICT}PredictBatch`, "ALLOW"],
    [primary, metrics, `${METRICS}ReportPredictions`, "ALLOW"],
    [app, metrics, `${METRICS}SubmitFeedback`, "ALLOW"],
    [app, metrics, `${METRICS}GetShadowReport`, "ALLOW"],
    [app, metrics, `${METRICS}WatchShadowReport`, "ALLOW"],
    [primary, metrics, `${METRICS}SubmitFeedback`, "DENY"],
    [primary, metrics, `${METRICS}GetShadowReport`, "DENY"],
    [metrics, primary, `${PREDICT}Predict`, "DENY"],
    ["intruder", primary, `${PREDICT}Predict`, "DENY"],
    ["intruder", metrics, `${METRICS}ReportPredictions`, "DENY"],
    ["intruder", metrics, `${METRICS}GetShadowReport`, "DENY"],
    ["intruder", app, `${PREDICT}Predict`, "DENY"],
  ];
  for (const shadow of ms.shadow) {
    cases.push(
      [app, shadow, `${PREDICT}Predict`, "ALLOW"],
      [shadow, metrics, `${METRICS}ReportPredictions`, "ALLOW"],
      [shadow, primary, `${PREDICT}Predict`, "DENY"],
      [shadow, metrics, `${METRICS}GetShadowReport`, "DENY"],
      ["intruder", shadow, `${PREDICT}Predict`, "DENY"],
    );
    // One candidate never calls another.
    for (const other of ms.shadow.filter((o) => o !== shadow))
      cases.push([shadow, other, `${PREDICT}Predict`, "DENY"]);
  }
  if (test) {
    cases.push([test, app, `${PREDICT}Predict`, "ALLOW"], [test, primary, `${PREDICT}Predict`, "DENY"]);
  }
  for (const [from, to, path, want] of cases) {
    const got = authorize(objects, { principal: principal(from), workload: to, path, port: servingPort(to) });
    if (got !== want) {
      const who = typeof from === "string" ? from : from.name;
      problems.push(`${who} → ${to.name} ${path}: ${got}, expected ${want}`);
    }
  }
  return problems;
}
