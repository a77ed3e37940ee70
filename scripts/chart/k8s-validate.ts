// Validates rendered Kubernetes objects against the models of `kubernetes-models`, `@kubernetes-models/istio`,
// `@kubernetes-models/prometheus-operator` and `@kubernetes-models/argo-rollouts`, and rejects fields the schema does
// not know. Flagger's MetricTemplate has no model package: it is checked against a transcription of its CRD schema
// (flagger-schema.ts), with unknown fields rejected the same way.
//
// The models carry their OpenAPI schemas only as ajv-compiled validate functions (no JSON schema text), and those
// were compiled without `additionalProperties: false`, so `model.validate()` accepts `resorces:` silently. The
// compiled code reads every property the schema knows (`void 0!==data.resources&&validate(data.resources)`), and for
// maps (`additionalProperties: {…}`: labels, annotations, selectors) it iterates the keys and reads each value. So we
// run the model's own validate function on a Proxy of the object that records which keys the validator read, then
// walk the object: a key the validator never read is a field the schema does not have. This is fail-closed: a
// subtree the schema does not describe (free-form / preserve-unknown-fields) reports its keys as unknown rather than
// letting anything through, so a false positive is visible and a misspelling cannot hide.
import { FLAGGER_API_VERSION, validateFlaggerMetricTemplate } from "./flagger-schema.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface ModelClass {
  apiVersion: string;
  kind: string;
  prototype: { validate(this: unknown): void };
}

/** Which package holds the models of an apiVersion's group. */
function modelModule(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  if (slash < 0) return `kubernetes-models/${apiVersion}`; // the core group: "v1"
  const group = apiVersion.slice(0, slash);
  if (group.endsWith(".istio.io")) return `@kubernetes-models/istio/${apiVersion}`;
  if (group === "monitoring.coreos.com") return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  if (group === "argoproj.io") return `@kubernetes-models/argo-rollouts/${apiVersion}`;
  return `kubernetes-models/${apiVersion}`;
}

const modelCache = new Map<string, ModelClass | null>();

/** The model class for apiVersion + kind, or null when no installed package models it. */
export async function findModel(apiVersion: string, kind: string): Promise<ModelClass | null> {
  const key = `${apiVersion}|${kind}`;
  if (modelCache.has(key)) return modelCache.get(key) ?? null;
  let found: ModelClass | null = null;
  try {
    const mod = (await import(modelModule(apiVersion))) as Record<string, unknown>;
    const cls = mod[kind] as ModelClass | undefined;
    if (cls && cls.apiVersion === apiVersion && cls.kind === kind) found = cls;
  } catch {
    // No such group/version in the packages' exports (node and vite word this differently): not modelled. A model
    // package that fails to load makes every object "unknown", so this cannot pass silently.
  }
  modelCache.set(key, found);
  return found;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Wraps `root` so every property read through it (at any depth) is recorded per underlying object. */
function recordingProxy(root: Json): { proxy: Json; reads: WeakMap<object, Set<string>> } {
  const reads = new WeakMap<object, Set<string>>();
  const proxies = new WeakMap<object, object>();
  const wrap = (value: Json): Json => {
    if (typeof value !== "object" || value === null) return value;
    const existing = proxies.get(value);
    if (existing) return existing as Json;
    const seen = new Set<string>();
    reads.set(value, seen);
    const proxy = new Proxy(value, {
      get(target, prop, receiver) {
        if (typeof prop === "string") seen.add(prop);
        const v = Reflect.get(target, prop, receiver) as Json;
        return typeof prop === "string" && Object.hasOwn(target, prop) ? wrap(v) : v;
      },
      has(target, prop) {
        if (typeof prop === "string") seen.add(prop);
        return Reflect.has(target, prop);
      },
    });
    proxies.set(value, proxy);
    return proxy as Json;
  };
  return { proxy: wrap(root), reads };
}

function collectUnknown(value: Json, path: string, reads: WeakMap<object, Set<string>>, out: string[]): void {
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      collectUnknown(item, `${path}[${i}]`, reads, out);
    });
    return;
  }
  if (!isObject(value)) return;
  const seen = reads.get(value);
  for (const [key, child] of Object.entries(value)) {
    const childPath = path ? `${path}.${key}` : key;
    if (!seen?.has(key)) {
      out.push(`unknown field ${childPath}`);
      continue;
    }
    collectUnknown(child, childPath, reads, out);
  }
}

export interface ValidationResult {
  /** Empty when the object is valid. */
  errors: string[];
}

/**
 * Validates one object: its kind must be modelled, it must pass the model's schema, and every field must be one the
 * schema knows. Returns human-readable problems (empty = valid).
 */
export async function validateObject(obj: unknown): Promise<string[]> {
  if (!isObject(obj)) return ["not an object"];
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== "string" || typeof kind !== "string")
    return ["apiVersion and kind must be strings"];
  const name = isObject(obj.metadata) ? String(obj.metadata.name) : "?";
  const where = `${kind} ${name} (${apiVersion})`;
  if (apiVersion === FLAGGER_API_VERSION && kind === "MetricTemplate") {
    return validateFlaggerMetricTemplate(obj).map((e) => `${where}: ${e}`);
  }
  const model = await findModel(apiVersion, kind);
  if (!model) return [`${where}: unknown kind: no model for ${apiVersion} ${kind}`];
  const errors: string[] = [];
  const { proxy, reads } = recordingProxy(obj);
  try {
    model.prototype.validate.call(proxy);
  } catch (err) {
    errors.push(`${where}: schema: ${(err as Error).message}`);
  }
  const unknown: string[] = [];
  collectUnknown(obj, "", reads, unknown);
  for (const u of unknown) errors.push(`${where}: ${u}`);
  return errors;
}

/** Validates every object; returns all problems. */
export async function validateAll(objects: unknown[]): Promise<string[]> {
  const out: string[] = [];
  for (const obj of objects) out.push(...(await validateObject(obj)));
  return out;
}
