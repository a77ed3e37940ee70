// Runs the real helm against charts/shadowmesh and parses what it renders.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { idempotentMethods } from "./checks.js";
import { REPO_ROOT } from "./helm.js";

export const CHART_DIR = join(REPO_ROOT, "charts/shadowmesh");
export const VALUES_DIR = join(REPO_ROOT, "scripts/chart/values");
export const RELEASE = "shadowmesh";
export const NAMESPACE = "shadowmesh";
/** Pinned so the render does not depend on helm's built-in default (and Chart.yaml's kubeVersion is checked). */
export const KUBE_VERSION = "1.31.0";
/**
 * The API versions a cluster with Istio (and the Prometheus operator) serves. Without them, a template gated on
 * `.Capabilities.APIVersions.Has` renders nothing and the checks would pass on an empty list.
 */
export const API_VERSIONS = [
  "networking.istio.io/v1",
  "security.istio.io/v1",
  "telemetry.istio.io/v1",
  "monitoring.coreos.com/v1",
  "networking.istio.io/v1/VirtualService",
  "networking.istio.io/v1/DestinationRule",
  "networking.istio.io/v1/Gateway",
  "security.istio.io/v1/PeerAuthentication",
  "security.istio.io/v1/AuthorizationPolicy",
  "monitoring.coreos.com/v1/ServiceMonitor",
  "monitoring.coreos.com/v1/PodMonitor",
  "monitoring.coreos.com/v1/PrometheusRule",
];

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm with a clean, repository-local environment (no user config, no plugins, no cluster). */
export function runHelm(helm: string, args: string[]): HelmResult {
  const home = join(REPO_ROOT, ".tools", "helm-home");
  const r = spawnSync(helm, args, {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 60_000,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      HELM_CONFIG_HOME: join(home, "config"),
      HELM_CACHE_HOME: join(home, "cache"),
      HELM_DATA_HOME: join(home, "data"),
      // No cluster: make sure a stray kubeconfig cannot be used by `lookup`.
      KUBECONFIG: join(home, "no-kubeconfig"),
    },
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export interface ValueArgs {
  /** Value files (absolute, or relative to scripts/chart/values/). */
  files?: string[];
  /** `--set` pairs (helm 3 turns only integers and booleans into non-strings: `--set x=0.5` is the string "0.5"). */
  set?: Record<string, string | number | boolean>;
  /** `--set-json` pairs (values JSON-encoded, so 0.5 stays a number). */
  setJson?: Record<string, unknown>;
}

export function valueFlags({ files = [], set = {}, setJson = {} }: ValueArgs): string[] {
  const flags: string[] = [];
  for (const f of files) flags.push("-f", f.startsWith("/") ? f : join(VALUES_DIR, f));
  for (const [k, v] of Object.entries(set)) flags.push("--set", `${k}=${v}`);
  for (const [k, v] of Object.entries(setJson)) flags.push("--set-json", `${k}=${JSON.stringify(v)}`);
  return flags;
}

export interface Rendered {
  /** Template file the object came from (`# Source:` line). */
  source: string;
  obj: K8sObject;
}

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are free-form JSON walked by the checks
type Any = any;
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [k: string]: Any };
  [k: string]: Any;
};

export function templateArgs(values: ValueArgs): string[] {
  const args = ["template", RELEASE, CHART_DIR, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION];
  for (const v of API_VERSIONS) args.push("--api-versions", v);
  return [...args, ...valueFlags(values)];
}

/** `helm template` with the pinned kube version and API versions; throws with helm's stderr on failure. */
export function helmTemplate(helm: string, values: ValueArgs = {}): Rendered[] {
  const r = runHelm(helm, templateArgs(values));
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}):\n${r.stderr}`);
  return parseManifests(r.stdout);
}

/** Splits helm's multi-document output into objects, keeping each one's `# Source:` template. */
export function parseManifests(text: string): Rendered[] {
  const out: Rendered[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML from helm: ${doc.errors[0]?.message}`);
    const obj = doc.toJS() as K8sObject | null;
    if (obj === null || obj === undefined) continue;
    const source =
      /# Source: (\S+)/.exec(doc.commentBefore ?? "")?.[1] ?? /# Source: (\S+)/.exec(String(doc))?.[1];
    out.push({ source: source ?? "?", obj });
  }
  return out;
}

/** `helm lint --strict` with the pinned kube version. */
export function helmLint(helm: string, values: ValueArgs = {}): HelmResult {
  return runHelm(helm, [
    "lint",
    CHART_DIR,
    "--strict",
    "--namespace",
    NAMESPACE,
    "--kube-version",
    KUBE_VERSION,
    ...valueFlags(values),
  ]);
}

/** Every `.Capabilities.APIVersions.Has "…"` argument in the chart's templates. */
export function capabilityGates(): string[] {
  const gates = new Set<string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else {
        for (const m of readFileSync(p, "utf8").matchAll(/APIVersions\.Has\s+"([^"]+)"/g))
          gates.add(m[1] as string);
      }
    }
  };
  walk(join(CHART_DIR, "templates"));
  return [...gates].sort();
}

/** The chart's default values (charts/shadowmesh/values.yaml). */
// biome-ignore lint/suspicious/noExplicitAny: free-form values
export function defaultValues(): Record<string, any> {
  return parse(readFileSync(join(CHART_DIR, "values.yaml"), "utf8"));
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (
    over &&
    typeof over === "object" &&
    !Array.isArray(over) &&
    base &&
    typeof base === "object" &&
    !Array.isArray(base)
  ) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(over)) out[k] = deepMerge(out[k], v);
    return out;
  }
  return over;
}

/** The values helm sees: values.yaml, then the files, then `--set` / `--set-json` (dotted keys, no list indexes). */
// biome-ignore lint/suspicious/noExplicitAny: free-form values
export function effectiveValues({ files = [], set = {}, setJson = {} }: ValueArgs = {}): Record<string, any> {
  let values = defaultValues() as unknown;
  for (const f of files)
    values = deepMerge(values, parse(readFileSync(f.startsWith("/") ? f : join(VALUES_DIR, f), "utf8")));
  for (const [k, v] of [...Object.entries(set), ...Object.entries(setJson)]) {
    const over = k
      .split(".")
      .reverse()
      .reduce<unknown>((acc, part) => ({ [part]: acc }), v);
    values = deepMerge(values, over);
  }
  return values as Record<string, unknown>;
}

/** Principals outside the release that the values allow (ingress gateway, Prometheus). */
export function externalPrincipals(values: ValueArgs = {}): string[] {
  const v = effectiveValues(values);
  return [...(v.istio?.gateway?.principals ?? []), ...(v.istio?.prometheusPrincipals ?? [])];
}

/** A candidate as the values define it, with the chart's defaults filled in. */
export interface ExpectedCandidate {
  name: string;
  model: string;
  version: string;
  replicas: number;
  percent: number;
}

/**
 * The candidates the chart renders for these values, worked out the way `shadowmesh.candidates` does: the
 * `candidates` list with `replicas` defaulting to 1 and `mirrorPercent` to `mirrorPercentage`; the former single-shadow
 * keys (`modelService.shadow.enabled: false` → none; `version`, `modelDir`, `replicaCount` → the first candidate's).
 */
export function expectedCandidates(values: ValueArgs = {}): ExpectedCandidate[] {
  const v = effectiveValues(values);
  const shared = v.modelService?.shadow ?? {};
  if (shared.enabled === false) return [];
  // biome-ignore lint/suspicious/noExplicitAny: free-form values
  return ((v.candidates ?? []) as any[]).map((c, i) => {
    const legacy = i === 0 ? shared : {};
    const model = String(legacy.modelDir ?? c.model);
    return {
      name: legacy.modelDir ? (model.split("/").pop() ?? model) : String(c.name),
      model,
      version: String(legacy.version ?? c.version),
      replicas: Number(legacy.replicaCount ?? c.replicas ?? 1),
      percent: Number(c.mirrorPercent ?? v.mirrorPercentage),
    };
  });
}

/** What the rendered chart must show for a value set, read from the values. */
export function expectations(values: ValueArgs = {}): {
  istio: boolean;
  shadow: boolean;
  /** METRICS_SERVICE_EXPECTED_MIRROR_PERCENT: the one candidate's share, else 0. */
  percent: number;
  candidates: ExpectedCandidate[];
  externalPrincipals: string[];
  externalSecrets: string[];
  idempotent: string[];
} {
  const v = effectiveValues(values);
  const candidates = expectedCandidates(values);
  return {
    istio: v.istio?.enabled !== false,
    shadow: candidates.length > 0,
    percent: candidates.length === 1 ? (candidates[0] as ExpectedCandidate).percent : 0,
    candidates,
    externalPrincipals: externalPrincipals(values),
    externalSecrets: v.feedback?.existingSecret ? [String(v.feedback.existingSecret)] : [],
    idempotent: idempotentMethods(protoSources()),
  };
}

/** The repository's .proto sources (for the idempotency of each RPC). */
export function protoSources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".proto")) out.push(readFileSync(p, "utf8"));
    }
  };
  walk(join(REPO_ROOT, "proto"));
  return out;
}
