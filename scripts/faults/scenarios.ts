import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Mesh, type ServiceName, startMesh } from "../lib/mesh.js";
import { type Load, okLatencies, quantile, type Sample, startLoad } from "./load.js";
import { MIRROR, PRIMARY, readRecords, SHADOW, type StoredRecord } from "./records.js";

/**
 * The fault suite's scenarios against the real local mesh (scripts/lib/mesh.ts, supervised as under `npm start`):
 * a fresh mesh per scenario, steady bounded load (load.ts), the fault, then the figures — primary errors and
 * latency, acknowledged predictions whose record metrics-service never stored, and when the comparison recovered.
 */

export interface RunOptions {
  /** Predict calls per second. */
  rate: number;
  /** Load before the fault (ms). */
  preMs: number;
  /** Load after the fault has cleared (ms). */
  postMs: number;
  /** Mesh start-up limit per service (ms). */
  readyTimeoutMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface FaultContext {
  mesh: Mesh;
  load: Load;
  options: RunOptions;
  sleep: (ms: number) => Promise<void>;
}

/** What a fault did: when it was cleared (ms since the epoch; the peer was ready again), and what to say. */
export interface FaultResult {
  clearedAt?: number;
  note?: string;
}

export type RecoveryKind = "shadow" | "pair" | "primary" | "none";

export interface Scenario {
  name: string;
  /** Extra environment per service (fault injection settings for app-service, …). */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Runs the fault while the load goes on; absent = the control run. */
  fault?: (context: FaultContext) => Promise<FaultResult>;
  /** What "the comparison recovered" means here. */
  recovery: RecoveryKind;
  /** The mesh is stopped by the fault itself (Ctrl-C under load). */
  stopsMesh?: boolean;
}

export interface Outcome {
  name: string;
  calls: number;
  skipped: number;
  primaryErrors: number;
  errorCodes: Record<string, number>;
  p50: number;
  p99: number;
  /** Calls app-service answered OK. */
  acknowledged: number;
  /** Acknowledged calls without a stored PRIMARY record. */
  unrecorded: number;
  /** The primary model-services' model_service_report_dropped_total (all reasons) at the end (before stopping). */
  droppedCounted: number;
  /** Acknowledged predictions neither stored nor counted as dropped. */
  lost: number;
  /** ms from the fault clearing to the first call that made it into the comparison again (undefined = never). */
  recoveredMs: number | undefined;
  recovery: RecoveryKind;
  /** Shadow records of the calls during the run, by outcome. */
  shadowRecords: { ok: number; mirrorFailures: number; ownFailures: number; missing: number };
  restarts: string[];
  note: string | undefined;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sum of one counter's series in a Prometheus text exposition. */
export async function scrapeCounter(url: string, name: string): Promise<number> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(2000) })).text();
    return text
      .split("\n")
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
  } catch {
    return Number.NaN;
  }
}

/** The figures of one run from its samples and the stored records. */
export function analyse(
  scenario: Scenario,
  samples: readonly Sample[],
  records: readonly StoredRecord[],
  extra: {
    skipped: number;
    droppedCounted: number;
    faultStart: number | undefined;
    clearedAt: number | undefined;
    restarts: string[];
    note: string | undefined;
  },
): Outcome {
  const primary = new Set<string>();
  const shadow = new Map<string, StoredRecord[]>();
  for (const record of records) {
    if (record.role === PRIMARY) {
      primary.add(record.requestId);
    } else if (record.role === SHADOW) {
      shadow.set(record.requestId, [...(shadow.get(record.requestId) ?? []), record]);
    }
  }
  const acknowledged = samples.filter((sample) => sample.ok && sample.requestId);
  const unrecorded = acknowledged.filter((sample) => !primary.has(sample.requestId as string)).length;
  const errorCodes: Record<string, number> = {};
  for (const sample of samples) {
    if (!sample.ok) {
      errorCodes[sample.code ?? "?"] = (errorCodes[sample.code ?? "?"] ?? 0) + 1;
    }
  }
  const shadowOk = (id: string) =>
    (shadow.get(id) ?? []).some((record) => record.grpcCode === 0 && record.source !== MIRROR) &&
    !(shadow.get(id) ?? []).some((record) => record.source === MIRROR);
  const shadowRecords = { ok: 0, mirrorFailures: 0, ownFailures: 0, missing: 0 };
  for (const sample of acknowledged) {
    const own = shadow.get(sample.requestId as string) ?? [];
    if (own.some((record) => record.source === MIRROR)) {
      shadowRecords.mirrorFailures++;
    } else if (own.some((record) => record.grpcCode === 0)) {
      shadowRecords.ok++;
    } else if (own.length > 0) {
      shadowRecords.ownFailures++;
    } else {
      shadowRecords.missing++;
    }
  }
  let recoveredMs: number | undefined;
  if (extra.faultStart !== undefined && extra.clearedAt !== undefined && scenario.recovery !== "none") {
    const after = acknowledged
      .filter((sample) => sample.sentAt >= (extra.faultStart as number))
      .sort((a, b) => a.sentAt - b.sentAt);
    const first =
      scenario.recovery === "shadow"
        ? after.find((sample) => shadowOk(sample.requestId as string))
        : scenario.recovery === "pair"
          ? after.find(
              (sample) => primary.has(sample.requestId as string) && shadowOk(sample.requestId as string),
            )
          : samples
              .filter((sample) => sample.ok && sample.sentAt >= (extra.clearedAt as number) - 5000)
              .filter((sample) => sample.endedAt >= (extra.clearedAt as number))
              .sort((a, b) => a.endedAt - b.endedAt)[0];
    if (first) {
      recoveredMs =
        scenario.recovery === "primary"
          ? first.endedAt - (extra.clearedAt as number)
          : first.sentAt - (extra.clearedAt as number);
    }
  }
  const latencies = okLatencies(samples);
  return {
    name: scenario.name,
    calls: samples.length,
    skipped: extra.skipped,
    primaryErrors: samples.length - acknowledged.length,
    errorCodes,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    acknowledged: acknowledged.length,
    unrecorded,
    droppedCounted: extra.droppedCounted,
    lost: Math.max(0, unrecorded - (Number.isNaN(extra.droppedCounted) ? 0 : extra.droppedCounted)),
    recoveredMs,
    recovery: scenario.recovery,
    shadowRecords,
    restarts: extra.restarts,
    note: extra.note,
  };
}

/** Runs one scenario on a fresh supervised mesh and returns its figures. */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<Outcome> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "faults-data-"));
  const logDir = mkdtempSync(path.join(tmpdir(), "faults-logs-"));
  const log = options.log ?? (() => {});
  let mesh: Mesh | undefined;
  try {
    mesh = await startMesh({
      ports: "free",
      dataDir,
      logDir,
      mirrorPercent: 100,
      supervise: true,
      ...(scenario.serviceEnv ? { serviceEnv: scenario.serviceEnv } : {}),
      readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
      onEvent: (event) => log(`  ${event.line}`),
    });
    const baseUrl = `http://127.0.0.1:${mesh.ports.app}`;
    // Warm up (JIT, connections, ONNX sessions): a short burst whose calls are not counted.
    const warm = startLoad({ baseUrl, rate: options.rate, maxDurationMs: 2000 });
    await sleep(1000);
    await warm.stop();
    const load = startLoad({ baseUrl, rate: options.rate, maxDurationMs: 600_000 });
    await sleep(options.preMs);
    let faultStart: number | undefined;
    let result: FaultResult = {};
    if (scenario.fault) {
      faultStart = Date.now();
      result = await scenario.fault({ mesh, load, options, sleep });
    }
    let droppedCounted = Number.NaN;
    if (!scenario.stopsMesh) {
      await sleep(options.postMs);
      await load.stop();
      droppedCounted = await scrapeCounter(
        `http://127.0.0.1:${mesh.ports.primaryMetrics}/metrics`,
        "model_service_report_dropped_total",
      );
      await mesh.stop();
    } else {
      await load.stop();
    }
    const records = readRecords(dataDir);
    return analyse(scenario, load.samples, records, {
      skipped: load.skipped,
      droppedCounted,
      faultStart,
      clearedAt: result.clearedAt,
      restarts: mesh.events.filter((event) => event.kind !== "held").map((event) => event.line),
      note: result.note,
    });
  } finally {
    await mesh?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(logDir, { recursive: true, force: true });
  }
}

/** The scenarios of issue 11, in the order of the table. `delayMs` is the shadow's injected delay. */
export function scenarios(options: { stopSeconds: number; metricsDownSeconds: number; delayMs: number }) {
  const control: Scenario = { name: "control (no fault)", recovery: "none" };
  const shadowKill: Scenario = {
    name: "shadow SIGKILL (restarted by the supervisor)",
    recovery: "shadow",
    fault: async ({ mesh }) => {
      await mesh.kill("shadow", "SIGKILL");
      return { clearedAt: await mesh.whenReady("shadow", 60_000), note: "shadow restarted" };
    },
  };
  const shadowStop: Scenario = {
    name: `shadow SIGSTOP ${options.stopSeconds} s`,
    recovery: "shadow",
    fault: async ({ mesh, sleep }) => {
      mesh.processes.get("shadow")?.kill("SIGSTOP");
      await sleep(options.stopSeconds * 1000);
      mesh.processes.get("shadow")?.kill("SIGCONT");
      return { clearedAt: Date.now() };
    },
  };
  const shadowDelay: Scenario = {
    name: `shadow delayed ×10 (fault: +${options.delayMs} ms on 100 %)`,
    recovery: "none",
    serviceEnv: {
      app: {
        APP_SERVICE_SHADOW_FAULT_DELAY_MS: String(options.delayMs),
        APP_SERVICE_SHADOW_FAULT_DELAY_PERCENT: "100",
      },
    },
  };
  const shadowAbort: Scenario = {
    name: "shadow aborting every call (fault: UNAVAILABLE on 100 %)",
    recovery: "none",
    serviceEnv: {
      app: {
        APP_SERVICE_SHADOW_FAULT_ABORT_CODE: "UNAVAILABLE",
        APP_SERVICE_SHADOW_FAULT_ABORT_PERCENT: "100",
      },
    },
  };
  const metricsDown: Scenario = {
    name: `metrics-service down ${options.metricsDownSeconds} s`,
    recovery: "pair",
    fault: async ({ mesh, sleep }) => {
      await mesh.hold("metrics", "SIGKILL");
      await sleep(options.metricsDownSeconds * 1000);
      return { clearedAt: await mesh.release("metrics") };
    },
  };
  const primaryRestart: Scenario = {
    name: "primary SIGTERM and restart",
    recovery: "primary",
    fault: async ({ mesh }) => {
      await mesh.kill("primary", "SIGTERM");
      return { clearedAt: await mesh.whenReady("primary", 60_000) };
    },
  };
  const ctrlC: Scenario = {
    name: "Ctrl-C under load (ordered stop)",
    recovery: "none",
    stopsMesh: true,
    fault: async ({ mesh }) => {
      const begin = Date.now();
      await mesh.stop();
      return { note: `stopped in ${((Date.now() - begin) / 1000).toFixed(1)} s` };
    },
  };
  return { control, shadowKill, shadowStop, shadowDelay, shadowAbort, metricsDown, primaryRestart, ctrlC };
}
