// The settings the chart renders are accepted by each service's own start-up validation: a misspelled setting name,
// a value a service refuses (a bad address, a short secret, a percentage out of range) or a setting a service does not
// have fails here, not in a cluster's CrashLoopBackOff.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { byKind, type Workload, workloads } from "./checks.js";
import { ensureHelm, REPO_ROOT } from "./helm.js";
import { helmTemplate, type K8sObject, type ValueArgs } from "./render.js";

// biome-ignore lint/suspicious/noExplicitAny: rendered Kubernetes objects are untyped YAML.
type Any = any;

const SERVICES = {
  "model-service": "MODEL_SERVICE_",
  "app-service": "APP_SERVICE_",
  "metrics-service": "METRICS_SERVICE_",
} as const;
type ServiceName = keyof typeof SERVICES;

interface ConfigModule {
  spec: Record<string, unknown>;
  readConfig(env: NodeJS.ProcessEnv): unknown;
}

async function configOf(service: ServiceName): Promise<ConfigModule> {
  // The built JavaScript, as the image runs it (npm test builds before it runs the tests).
  return (await import(join(REPO_ROOT, "services", service, "dist", "config.js"))) as ConfigModule;
}

/** Which service a container runs, from its image repository (`…/model-service:0.1.0`). */
function serviceOf(container: Any): ServiceName | undefined {
  const repository = String(container.image ?? "").replace(/:[^/:]+$/, "");
  return (Object.keys(SERVICES) as ServiceName[]).find((name) => repository.endsWith(`/${name}`));
}

/** The environment a container starts with, resolved as the kubelet would (Secrets get a 48-character stand-in). */
function environmentOf(objects: K8sObject[], container: Any): Record<string, string> {
  const env: Record<string, string> = {};
  const configMap = (name: string) => byKind(objects, "ConfigMap").find((c) => c.metadata.name === name);
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) {
      for (const [key, value] of Object.entries(configMap(from.configMapRef.name)?.data ?? {})) {
        env[`${from.prefix ?? ""}${key}`] = String(value);
      }
    }
    if (from.secretRef) {
      throw new Error(`envFrom a whole Secret (${from.secretRef.name}) cannot be checked here`);
    }
  }
  for (const entry of container.env ?? []) {
    if (entry.value !== undefined) {
      env[entry.name] = String(entry.value);
    } else if (entry.valueFrom?.configMapKeyRef) {
      const ref = entry.valueFrom.configMapKeyRef;
      env[entry.name] = String(configMap(ref.name)?.data?.[ref.key] ?? "");
    } else if (entry.valueFrom?.secretKeyRef) {
      env[entry.name] = "k".repeat(48);
    } else if (entry.valueFrom?.fieldRef) {
      env[entry.name] = "shadowmesh-pod-0";
    } else {
      throw new Error(`env ${entry.name}: a source this check does not know`);
    }
  }
  return env;
}

const VALUE_SETS: Record<string, ValueArgs> = {
  defaults: {},
  ...Object.fromEntries(
    readdirSync(join(REPO_ROOT, "scripts/chart/values"))
      .filter((file) => file.endsWith(".yaml"))
      .map((file) => [file, { files: [file] }]),
  ),
  "the chart's ci/ values, all at once": {
    files: readdirSync(join(REPO_ROOT, "charts/shadowmesh/ci"))
      .filter((file) => file.endsWith(".yaml"))
      .map((file) => join(REPO_ROOT, "charts/shadowmesh/ci", file)),
  },
};

let helm: string;
beforeAll(async () => {
  helm = await ensureHelm();
});

/** Every service container of every long-running workload, with the service it runs. */
function serviceContainers(objects: K8sObject[]) {
  const out: { workload: Workload; container: Any; service: ServiceName }[] = [];
  for (const workload of workloads(objects)) {
    if (workload.obj.metadata.annotations?.["helm.sh/hook"]) continue; // the helm test Pod runs a client
    for (const container of workload.podSpec.containers ?? []) {
      const service = serviceOf(container);
      if (service) out.push({ workload, container, service });
    }
  }
  return out;
}

describe.each(Object.entries(VALUE_SETS))("settings rendered with %s", (_name, values) => {
  it("are accepted by each service's own configuration check, and every one is a setting the service has", async () => {
    const objects = helmTemplate(helm, values).map((r) => r.obj);
    const containers = serviceContainers(objects);
    expect(new Set(containers.map((c) => c.service))).toEqual(new Set(Object.keys(SERVICES)));
    const problems: string[] = [];
    for (const { workload, container, service } of containers) {
      const prefix = SERVICES[service];
      const env = environmentOf(objects, container);
      const { spec, readConfig } = await configOf(service);
      for (const name of Object.keys(env)) {
        if (name.startsWith(prefix) && !(name.slice(prefix.length) in spec)) {
          problems.push(`${workload.name}: ${name} is not a ${service} setting`);
        }
      }
      try {
        readConfig(env);
      } catch (error) {
        problems.push(`${workload.name}: ${service} refuses its settings: ${(error as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

// Without Istio app-service mirrors itself: its own parser (readConfig → SHADOWS) must read from the rendered
// APP_SERVICE_SHADOWS every candidate, at its own Service, with its share and the in-flight bound.
describe("app-service's shadows, rendered without Istio", () => {
  it("are every candidate, read by app-service itself", async () => {
    const objects = helmTemplate(helm, { files: ["two-candidates-istio-off.yaml"] }).map((r) => r.obj);
    const app = serviceContainers(objects).find((c) => c.service === "app-service");
    expect(app).toBeDefined();
    const { readConfig } = await configOf("app-service");
    const { SHADOWS } = readConfig(environmentOf(objects, app?.container)) as { SHADOWS: unknown };
    expect(SHADOWS).toEqual([
      expect.objectContaining({
        name: "spam-v2",
        address: "shadowmesh-model-service-spam-v2:50051",
        percent: 0,
        maxInFlight: 16,
      }),
      expect.objectContaining({
        name: "spam-lite",
        address: "shadowmesh-model-service-spam-lite:50051",
        percent: 50,
        maxInFlight: 16,
      }),
    ]);
  });
});

describe("the settings check", () => {
  it("fails on a setting a service does not have and on a value it refuses", async () => {
    const objects = helmTemplate(helm, {
      set: {
        "appService.env.APP_SERVICE_MIRROR_PERCENTAGE": "10",
        "appService.env.APP_SERVICE_RETRY_JITTER_MS": "-1",
      },
    }).map((r) => r.obj);
    const app = serviceContainers(objects).find((c) => c.service === "app-service");
    expect(app).toBeDefined();
    const env = environmentOf(objects, app?.container);
    const { spec, readConfig } = await configOf("app-service");
    expect("MIRROR_PERCENTAGE" in spec).toBe(false);
    expect(env.APP_SERVICE_MIRROR_PERCENTAGE).toBe("10");
    expect(() => readConfig(env)).toThrow(/RETRY_JITTER_MS/);
  });
});
