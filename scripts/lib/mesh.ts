import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePortsFor, PARENT_WATCH_ENV } from "@shadowmesh/common";
import { describeHolder, portFree } from "./ports.js";

/**
 * The local mesh: model-service PRIMARY (spam-v1), one or two model-service SHADOWs (the candidates spam-v2 and
 * spam-lite), metrics-service and app-service as child processes on 127.0.0.1 — what `npm start` runs (both
 * candidates) and what the end-to-end tests start on free ports (spam-v2 alone unless they ask for both).
 * Every service is the built JavaScript (`services/<name>/dist/main.js`), configured only through its env.
 */

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export type ServiceName = "primary" | "shadow" | "lite" | "metrics" | "app";

/** The model-services that shadow the primary: `shadow` serves the candidate spam-v2, `lite` serves spam-lite. */
export type CandidateService = "shadow" | "lite";

/** The model each candidate service serves; its name is the candidate's name everywhere (reports, --candidate). */
export const CANDIDATE_MODELS: Record<CandidateService, string> = { shadow: "spam-v2", lite: "spam-lite" };

export interface MeshPorts {
  app: number;
  appMetrics: number;
  primary: number;
  primaryMetrics: number;
  shadow: number;
  shadowMetrics: number;
  lite: number;
  liteMetrics: number;
  metrics: number;
  metricsMetrics: number;
}

/** The documented defaults (README): app 8080, models 50051/50052/50054, metrics-service 50053, /metrics on 910x. */
export const DEFAULT_PORTS: MeshPorts = {
  app: 8080,
  appMetrics: 9100,
  primary: 50051,
  primaryMetrics: 9101,
  shadow: 50052,
  shadowMetrics: 9102,
  lite: 50054,
  liteMetrics: 9104,
  metrics: 50053,
  metricsMetrics: 9103,
};

/** How a supervised mesh restarts a child that exits (as a kubelet does: restart with a growing pause). */
export interface SupervisionOptions {
  /** Pause before the first restart; doubled after each further exit up to maxBackoffMs. Default 1000. */
  initialBackoffMs?: number;
  /** Longest pause between restarts. Default 30 000. */
  maxBackoffMs?: number;
  /** A child that ran this long before it exited starts again from initialBackoffMs. Default 30 000. */
  resetAfterMs?: number;
  /** This many exits within crashLoopWindowMs make a crash loop (reported; restarts go on). Default 3. */
  crashLoopExits?: number;
  /** Default 60 000. */
  crashLoopWindowMs?: number;
}

/** Something that happened to a child after the mesh started; `line` is what `npm start` prints. */
export interface MeshEvent {
  service: ServiceName;
  kind: "exited" | "restarting" | "ready" | "crash-loop" | "held" | "released";
  line: string;
  /** ms since the epoch */
  at: number;
  pid?: number;
  /** exit code or signal name, for "exited" */
  exit?: string;
  /** which restart this is (1 = the first), for "restarting", "ready" and "crash-loop" */
  restart?: number;
}

export interface MeshOptions {
  host?: string;
  /** Ports to use; `"free"` picks free ones (tests). */
  ports?: Partial<MeshPorts> | "free";
  /** Where metrics-service keeps its SQLite store. */
  dataDir?: string;
  /** Where each child's log goes (`<dir>/<service>.log`). */
  logDir?: string;
  /** The candidates to start next to the primary (default `["shadow"]`: spam-v2 alone; `npm start` runs both). */
  candidates?: readonly CandidateService[];
  /** Percentage of Predict calls app-service mirrors to each candidate (default 100). */
  mirrorPercent?: number;
  /** Extra environment for every child (for example LOG_LEVEL overrides). */
  env?: Record<string, string>;
  /** Extra environment for one child (for example fault injection settings for app-service). */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Called with each warning or error line a child logs (pino level ≥ 40), and with lines that are not JSON. */
  onLogLine?: (service: ServiceName, line: string) => void;
  /** How long to wait for every service to be ready. */
  readyTimeoutMs?: number;
  /**
   * Restart children that exit after the mesh has started (`npm start`); default off, so that a test that kills a
   * service sees it stay dead. `true` = the defaults of SupervisionOptions.
   */
  supervise?: boolean | SupervisionOptions;
  /** Called with every MeshEvent (restarts, crash loops, holds). */
  onEvent?: (event: MeshEvent) => void;
  /** What names the ports in messages (`npm start` passes the SHADOWMESH_*_PORT variables). */
  portNames?: Partial<Record<keyof MeshPorts, string>>;
}

export interface Mesh {
  readonly host: string;
  readonly ports: MeshPorts;
  readonly dataDir: string;
  readonly logDir: string;
  /** The current child of every service (a restart replaces the entry). */
  readonly processes: ReadonlyMap<ServiceName, ChildProcess>;
  /** Every MeshEvent so far. */
  readonly events: readonly MeshEvent[];
  /** Base URLs by service, for the table that `npm start` prints. */
  urls(): { name: string; url: string; what: string }[];
  /** Sends `signal` to one service and waits for it to exit (a supervised mesh then restarts it). */
  kill(service: ServiceName, signal?: NodeJS.Signals): Promise<number | null>;
  /** Stops one service (`signal`, default SIGTERM) and keeps it down until `release` (no restarts meanwhile). */
  hold(service: ServiceName, signal?: NodeJS.Signals): Promise<number | null>;
  /** Starts a held (or exited, unsupervised) service again now; resolves when it is ready (ms since the epoch). */
  release(service: ServiceName): Promise<number>;
  /**
   * Resolves (ms since the epoch) when the service's current child is ready — at once if it already is, else after
   * the next restart's readiness; rejects after `timeoutMs`.
   */
  whenReady(service: ServiceName, timeoutMs?: number): Promise<number>;
  /**
   * Stops every service in order — app-service first (it stops accepting and finishes in-flight calls), then both
   * model-services (they flush their reports), then metrics-service — each stage SIGKILLed if it outlasts its share
   * of `timeoutMs` (default 9000), and waits for all of them.
   */
  stop(timeoutMs?: number): Promise<void>;
}

async function resolvePorts(ports: MeshOptions["ports"], host: string): Promise<MeshPorts> {
  if (ports === "free") {
    return freePortsFor(Object.keys(DEFAULT_PORTS) as (keyof MeshPorts)[], host);
  }
  return { ...DEFAULT_PORTS, ...ports };
}

/** The file under the data dir that keeps the local mesh's feedback secret. */
export const FEEDBACK_SECRET_FILE = "feedback-secret";

/**
 * The feedback secret app-service signs tokens with and metrics-service checks them with (README "Feedback
 * tokens"): made once with 32 random bytes and kept in `<dataDir>/feedback-secret` (mode 0600), so that tokens handed
 * out before a restart still verify after it. Delete the file to rotate it.
 */
export function feedbackSecret(dataDir: string): string {
  const file = path.join(dataDir, FEEDBACK_SECRET_FILE);
  if (existsSync(file)) {
    chmodSync(file, 0o600);
    const kept = readFileSync(file, "utf8").trim();
    if (kept.length >= 32) {
      return kept;
    }
  }
  const secret = randomBytes(32).toString("base64url");
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}

/**
 * Each service's own shutdown limit in the local mesh, inside the launcher's share for its stage (STOP_STAGES), so
 * that a Ctrl-C stops everything within 10 s even when every stage takes its longest: app-service 3 s (1.5 s to
 * finish in-flight calls, 1 s to flush its mirror records), model-services 3 s (1 s to drain, 1.5 s to flush their
 * reports), metrics-service 2.5 s. The services' defaults (10 s each) suit a cluster, where they stop in parallel.
 */
const SHUTDOWN_ENV = {
  app: { APP_SERVICE_SHUTDOWN_TIMEOUT_MS: "3000" },
  model: { MODEL_SERVICE_SHUTDOWN_TIMEOUT_MS: "3000", MODEL_SERVICE_REPORT_FLUSH_TIMEOUT_MS: "1500" },
  metrics: { METRICS_SERVICE_SHUTDOWN_TIMEOUT_MS: "2500" },
};

/** Stop order and each stage's share of the launcher's stop time (the last stage gets what is left). */
const STOP_STAGES: { services: ServiceName[]; shareMs: number }[] = [
  { services: ["app"], shareMs: 3500 },
  { services: ["primary", "shadow", "lite"], shareMs: 3300 },
  { services: ["metrics"], shareMs: 2700 },
];

/** The environment of one service of the mesh (exported for tests). */
export function envFor(
  name: ServiceName,
  host: string,
  ports: MeshPorts,
  options: MeshOptions,
  dataDir: string,
  secret: string,
): Record<string, string> {
  const at = (port: number) => `${host}:${port}`;
  switch (name) {
    case "primary":
    case "shadow":
    case "lite": {
      const primary = name === "primary";
      return {
        MODEL_SERVICE_ROLE: primary ? "PRIMARY" : "SHADOW",
        MODEL_SERVICE_HOST: host,
        MODEL_SERVICE_GRPC_PORT: String(ports[name]),
        MODEL_SERVICE_METRICS_PORT: String(ports[`${name}Metrics`]),
        MODEL_SERVICE_MODEL_DIR: path.join(ROOT, "models", primary ? "spam-v1" : CANDIDATE_MODELS[name]),
        MODEL_SERVICE_METRICS_SERVICE_ADDRESS: at(ports.metrics),
        ...SHUTDOWN_ENV.model,
      };
    }
    case "metrics":
      return {
        METRICS_SERVICE_HOST: host,
        METRICS_SERVICE_GRPC_PORT: String(ports.metrics),
        METRICS_SERVICE_METRICS_PORT: String(ports.metricsMetrics),
        METRICS_SERVICE_DATA_DIR: dataDir,
        METRICS_SERVICE_FEEDBACK_SECRET: secret,
        // The share app-service mirrors: the coverage check expects each candidate to answer that share, no more.
        METRICS_SERVICE_EXPECTED_MIRROR_PERCENT: String(options.mirrorPercent ?? 100),
        METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS: candidatesOf(options)
          .map((candidate) => `${CANDIDATE_MODELS[candidate]}=${options.mirrorPercent ?? 100}`)
          .join(","),
        ...SHUTDOWN_ENV.metrics,
      };
    case "app":
      return {
        APP_SERVICE_HOST: host,
        APP_SERVICE_PORT: String(ports.app),
        APP_SERVICE_METRICS_PORT: String(ports.appMetrics),
        APP_SERVICE_MODEL_SERVICE_ADDRESS: at(ports.primary),
        // Each candidate by its model name, so that a failed mirrored call is recorded against that candidate.
        APP_SERVICE_SHADOWS: candidatesOf(options)
          .map((candidate) => `${CANDIDATE_MODELS[candidate]}=${at(ports[candidate])}`)
          .join(","),
        APP_SERVICE_MIRROR_PERCENT: String(options.mirrorPercent ?? 100),
        APP_SERVICE_METRICS_SERVICE_ADDRESS: at(ports.metrics),
        APP_SERVICE_WEB_DIR: path.join(ROOT, "web", "dist"),
        APP_SERVICE_FEEDBACK_SECRET: secret,
        ...SHUTDOWN_ENV.app,
      };
  }
}

const ENTRY: Record<ServiceName, string> = {
  primary: "services/model-service/dist/main.js",
  shadow: "services/model-service/dist/main.js",
  lite: "services/model-service/dist/main.js",
  metrics: "services/metrics-service/dist/main.js",
  app: "services/app-service/dist/main.js",
};

/** Start order: the collector first, then the models, then the public API that needs them. */
const ORDER: ServiceName[] = ["metrics", "primary", "shadow", "lite", "app"];

/** The table `npm start` prints: what listens where (exported for the README check). */
export function meshUrls(
  host: string,
  ports: MeshPorts,
  candidates: readonly CandidateService[],
): { name: string; url: string; what: string }[] {
  return [
    {
      name: "web app + Connect API",
      url: `http://${host}:${ports.app}`,
      what: "app-service (open in a browser)",
    },
    { name: "model-service primary", url: `grpc://${host}:${ports.primary}`, what: "spam-v1, gRPC h2c" },
    ...candidates.map((name) => ({
      name: `model-service ${name}`,
      url: `grpc://${host}:${ports[name]}`,
      what: `${CANDIDATE_MODELS[name]} (candidate), gRPC h2c`,
    })),
    { name: "metrics-service", url: `grpc://${host}:${ports.metrics}`, what: "shadow comparison, gRPC h2c" },
    { name: "app-service metrics", url: `http://${host}:${ports.appMetrics}/metrics`, what: "Prometheus" },
    { name: "primary metrics", url: `http://${host}:${ports.primaryMetrics}/metrics`, what: "Prometheus" },
    ...candidates.map((name) => ({
      name: `${name} metrics`,
      url: `http://${host}:${ports[`${name}Metrics`]}/metrics`,
      what: "Prometheus",
    })),
    {
      name: "metrics-service metrics",
      url: `http://${host}:${ports.metricsMetrics}/metrics`,
      what: "Prometheus",
    },
  ];
}

/** The candidates a mesh runs (MeshOptions.candidates), checked. */
function candidatesOf(options: MeshOptions): CandidateService[] {
  const candidates: CandidateService[] = [...new Set(options.candidates ?? (["shadow"] as const))];
  for (const candidate of candidates) {
    if (!(candidate in CANDIDATE_MODELS)) {
      throw new Error(
        `no such candidate service: ${candidate} (one of ${Object.keys(CANDIDATE_MODELS).join(", ")})`,
      );
    }
  }
  return candidates;
}

/** The services a mesh runs, in start order. */
function servicesOf(options: MeshOptions): ServiceName[] {
  const candidates: ServiceName[] = candidatesOf(options);
  return ORDER.filter((name) => (name === "shadow" || name === "lite" ? candidates.includes(name) : true));
}

function opsPort(name: ServiceName, ports: MeshPorts): number {
  return {
    primary: ports.primaryMetrics,
    shadow: ports.shadowMetrics,
    lite: ports.liteMetrics,
    metrics: ports.metricsMetrics,
    app: ports.appMetrics,
  }[name];
}

/** What listens on each port, for the "port in use" message. */
const PORT_ROLES: Record<keyof MeshPorts, string> = {
  app: "app-service HTTP",
  appMetrics: "app-service /metrics",
  primary: "model-service primary gRPC",
  primaryMetrics: "model-service primary /metrics",
  shadow: "model-service shadow gRPC",
  shadowMetrics: "model-service shadow /metrics",
  lite: "model-service lite gRPC",
  liteMetrics: "model-service lite /metrics",
  metrics: "metrics-service gRPC",
  metricsMetrics: "metrics-service /metrics",
};

/** Thrown by startMesh when ports are taken: one line per port, naming what holds it. */
export class PortsInUseError extends Error {
  override name = "PortsInUseError";
  constructor(readonly lines: string[]) {
    super(lines.join("\n"));
  }
}

/** Refuses to start over a port that is taken (by an earlier mesh's orphans, say), naming the holder. */
async function checkPorts(
  host: string,
  ports: MeshPorts,
  names: MeshOptions["portNames"],
  services: readonly ServiceName[],
): Promise<void> {
  const lines: string[] = [];
  const used = (Object.keys(ports) as (keyof MeshPorts)[]).filter((key) =>
    services.includes(key.replace(/Metrics$/, "") as ServiceName),
  );
  for (const key of used) {
    const port = ports[key];
    if (!(await portFree(port, host))) {
      const setting = names?.[key] ? `, ${names[key]}` : "";
      lines.push(`port ${port} (${PORT_ROLES[key]}${setting}) on ${host} is in use ${describeHolder(port)}`);
    }
  }
  if (lines.length > 0) {
    throw new PortsInUseError(lines);
  }
}

function running(child: ChildProcess | undefined): boolean {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

function waitExit(child: ChildProcess): Promise<number | null> {
  if (!running(child)) {
    return Promise.resolve(child.exitCode);
  }
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One supervised service: its current child and its restart bookkeeping. */
interface Slot {
  name: ServiceName;
  child: ChildProcess | undefined;
  /** ms since the epoch when the current child started / became ready (0 = not yet). */
  startedAt: number;
  readyAt: number;
  /** Restarts so far. */
  restarts: number;
  /** The pause before the next restart. */
  backoffMs: number;
  /** Exit times within the crash-loop window. */
  exits: number[];
  held: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** The last lines the child printed. */
  recent: string[];
  /** Reads the child's new log lines now. */
  readLog: () => void;
  waiters: { resolve: (at: number) => void; reject: (error: Error) => void }[];
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? signal : `exit ${code}`;
}

export async function startMesh(options: MeshOptions = {}): Promise<Mesh> {
  const host = options.host ?? "127.0.0.1";
  const ports = await resolvePorts(options.ports, host);
  const dataDir = options.dataDir ?? path.join(ROOT, ".data", "metrics");
  const logDir = options.logDir ?? path.join(ROOT, ".data", "logs");
  const supervision =
    options.supervise === undefined || options.supervise === false
      ? undefined
      : {
          initialBackoffMs: 1000,
          maxBackoffMs: 30_000,
          resetAfterMs: 30_000,
          crashLoopExits: 3,
          crashLoopWindowMs: 60_000,
          ...(options.supervise === true ? {} : options.supervise),
        };
  const services = servicesOf(options);
  await checkPorts(host, ports, options.portNames, services);
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const secret = feedbackSecret(dataDir);
  const processes = new Map<ServiceName, ChildProcess>();
  const events: MeshEvent[] = [];
  const slots = new Map<ServiceName, Slot>();
  /** Set once the whole mesh is up: from then on exits are supervised. */
  let started = false;
  let stopping = false;
  // Never leave services behind: if the launcher exits, SIGKILL what is left. (If the launcher is SIGKILLed itself,
  // each child sees its stdin pipe close and shuts down by itself: PARENT_WATCH_ENV in services/common.)
  process.once("exit", () => {
    for (const child of processes.values()) {
      if (running(child)) {
        child.kill("SIGKILL");
      }
    }
  });

  const emit = (event: Omit<MeshEvent, "at">) => {
    const full = { ...event, at: Date.now() };
    events.push(full);
    options.onEvent?.(full);
  };

  const spawnChild = (slot: Slot): ChildProcess => {
    const { name } = slot;
    const entry = path.join(ROOT, ENTRY[name]);
    if (!existsSync(entry)) {
      throw new Error(`${entry} does not exist: run \`npm run build\` first`);
    }
    // stdout and stderr go straight to the service's log file (not through this process): the log stays complete
    // even if the launcher dies first, and a service never blocks on, or fails writing to, a launcher gone away.
    const logFile = path.join(logDir, `${name}.log`);
    const logFd = openSync(logFile, "a");
    let offset = statSync(logFile).size;
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [entry], {
        cwd: ROOT,
        env: {
          ...process.env,
          ...envFor(name, host, ports, options, dataDir, secret),
          ...options.env,
          ...options.serviceEnv?.[name],
          [PARENT_WATCH_ENV]: "stdin",
        },
        // stdin is a pipe nobody writes to: when the launcher dies, however it dies, the kernel closes it and the
        // service shuts down (no orphans holding the ports).
        stdio: ["pipe", logFd, logFd],
        // Own process group: a terminal's Ctrl-C reaches only the launcher, which then stops each service once,
        // in order (a second signal would make a service skip its graceful shutdown).
        detached: true,
      });
    } finally {
      closeSync(logFd);
    }
    slot.child = child;
    slot.startedAt = Date.now();
    slot.readyAt = 0;
    processes.set(name, child);
    let buffered = "";
    /** Reads what the child appended to its log since the last call: keeps the tail, shows warnings. */
    const readNew = () => {
      let fd: number;
      try {
        fd = openSync(logFile, "r");
      } catch {
        return;
      }
      try {
        const chunk = Buffer.alloc(64 * 1024);
        for (;;) {
          const n = readSync(fd, chunk, 0, chunk.length, offset);
          if (n <= 0) {
            break;
          }
          offset += n;
          buffered += chunk.subarray(0, n).toString("utf8");
        }
      } finally {
        closeSync(fd);
      }
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        slot.recent.push(line);
        if (slot.recent.length > 20) {
          slot.recent.shift();
        }
        let level = 50;
        try {
          level = (JSON.parse(line) as { level?: number }).level ?? 50;
        } catch {
          // not JSON: show it
        }
        if (level >= 40 && line.trim()) {
          options.onLogLine?.(name, line);
        }
      }
    };
    slot.readLog = readNew;
    const tail = setInterval(readNew, 200);
    tail.unref();
    child.stdin?.on("error", () => {
      // the child exited: nothing to do
    });
    child.once("exit", (code, signal) => {
      clearInterval(tail);
      readNew();
      onExit(slot, child, code, signal);
    });
    return child;
  };

  /** Polls the child's /readyz until it answers 200; rejects if the child exits first or after `timeoutMs`. */
  const waitReady = async (slot: Slot, child: ChildProcess, timeoutMs: number): Promise<number> => {
    const url = `http://${host}:${opsPort(slot.name, ports)}/readyz`;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!running(child)) {
        slot.readLog();
        throw new Error(
          `${slot.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${slot.recent.join("\n")}`,
        );
      }
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
        if (response.ok && slot.child === child) {
          slot.readyAt = Date.now();
          for (const waiter of slot.waiters.splice(0)) {
            waiter.resolve(slot.readyAt);
          }
          return slot.readyAt;
        }
      } catch {
        // not listening yet
      }
      await pause(50);
    }
    throw new Error(
      `${slot.name} was not ready at ${url} within ${timeoutMs} ms:\n${slot.recent.join("\n")}`,
    );
  };

  /** Starts a new child for `slot` after a restart and reports when it is ready. */
  const restart = (slot: Slot) => {
    slot.timer = undefined;
    if (stopping || slot.held || running(slot.child)) {
      return;
    }
    slot.restarts++;
    let child: ChildProcess;
    try {
      child = spawnChild(slot);
    } catch (error) {
      emit({ service: slot.name, kind: "exited", line: `[${slot.name}] cannot restart: ${String(error)}` });
      return;
    }
    const number = slot.restarts;
    waitReady(slot, child, options.readyTimeoutMs ?? 30_000).then(
      () =>
        emit({
          service: slot.name,
          kind: "ready",
          pid: child.pid,
          restart: number,
          line: `[${slot.name}] ready again (restart ${number}, pid ${child.pid}, ${((Date.now() - slot.startedAt) / 1000).toFixed(1)} s after it started)`,
        }),
      () => {
        // exited before it was ready: onExit says so and schedules the next attempt; or still not ready: kill it
        if (running(child) && slot.child === child && !stopping) {
          child.kill("SIGKILL");
        }
      },
    );
  };

  const onExit = (slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
    if (slot.child !== child) {
      return;
    }
    if (!started || stopping || slot.held) {
      return;
    }
    const now = Date.now();
    const exit = describeExit(code, signal);
    const ranMs = now - slot.startedAt;
    if (!supervision) {
      emit({
        service: slot.name,
        kind: "exited",
        exit,
        ...(child.pid === undefined ? {} : { pid: child.pid }),
        line: `[${slot.name}] exited (${exit}) after ${(ranMs / 1000).toFixed(1)} s; not restarted`,
      });
      return;
    }
    slot.backoffMs =
      ranMs >= supervision.resetAfterMs || slot.backoffMs === 0
        ? supervision.initialBackoffMs
        : Math.min(supervision.maxBackoffMs, slot.backoffMs * 2);
    slot.exits = [...slot.exits.filter((at) => now - at < supervision.crashLoopWindowMs), now];
    // The child's last words, if it said anything readable (a port in use, a broken model …).
    const last = slot.recent
      .map((line) => {
        try {
          const parsed = JSON.parse(line) as { level?: number; msg?: string; err?: unknown };
          return (parsed.level ?? 0) >= 50
            ? `${parsed.msg ?? ""} ${parsed.err ? String(parsed.err) : ""}`
            : "";
        } catch {
          return line;
        }
      })
      .filter((line) => line.trim() !== "")
      .at(-1)
      ?.trim();
    const next = `restart ${slot.restarts + 1} in ${(slot.backoffMs / 1000).toFixed(1)} s`;
    if (slot.exits.length >= supervision.crashLoopExits) {
      emit({
        service: slot.name,
        kind: "crash-loop",
        exit,
        restart: slot.restarts + 1,
        line: `[${slot.name}] is crash-looping: ${slot.exits.length} exits in ${Math.round((now - (slot.exits[0] ?? now)) / 1000)} s, the last ${exit}${last ? ` ("${last.slice(0, 200)}")` : ""}; ${next}`,
      });
    } else {
      emit({
        service: slot.name,
        kind: "exited",
        exit,
        restart: slot.restarts + 1,
        ...(child.pid === undefined ? {} : { pid: child.pid }),
        line: `[${slot.name}] exited (${exit}) after ${(ranMs / 1000).toFixed(1)} s; ${next}, the other services keep running`,
      });
    }
    slot.timer = setTimeout(() => restart(slot), slot.backoffMs);
  };

  const slotOf = (service: ServiceName): Slot => {
    const slot = slots.get(service);
    if (!slot) {
      throw new Error(`no such service: ${service}`);
    }
    return slot;
  };

  const stopChildren = async (children: ChildProcess[], budgetMs: number) => {
    const alive = children.filter(running);
    for (const child of alive) {
      child.kill("SIGTERM");
      // A stopped (SIGSTOPped) child cannot act on SIGTERM until it runs again.
      child.kill("SIGCONT");
    }
    const timer = setTimeout(() => {
      for (const child of alive) {
        if (running(child)) {
          child.kill("SIGKILL");
        }
      }
    }, budgetMs);
    await Promise.all(alive.map(waitExit));
    clearTimeout(timer);
  };

  const stop = async (timeoutMs = 9000) => {
    stopping = true;
    for (const slot of slots.values()) {
      clearTimeout(slot.timer);
      for (const waiter of slot.waiters.splice(0)) {
        waiter.reject(new Error("the mesh is stopping"));
      }
    }
    const total = STOP_STAGES.reduce((sum, stage) => sum + stage.shareMs, 0);
    const begin = Date.now();
    for (const [index, stage] of STOP_STAGES.entries()) {
      const last = index === STOP_STAGES.length - 1;
      const budget = last
        ? Math.max(200, timeoutMs - (Date.now() - begin))
        : Math.round((stage.shareMs / total) * timeoutMs);
      const children = stage.services
        .map((name) => slots.get(name)?.child)
        .filter((child): child is ChildProcess => child !== undefined);
      await stopChildren(children, budget);
    }
  };

  try {
    for (const name of services) {
      const slot: Slot = {
        name,
        child: undefined,
        startedAt: 0,
        readyAt: 0,
        restarts: 0,
        backoffMs: 0,
        exits: [],
        held: false,
        timer: undefined,
        recent: [],
        readLog: () => {},
        waiters: [],
      };
      slots.set(name, slot);
      const child = spawnChild(slot);
      await waitReady(slot, child, options.readyTimeoutMs ?? 30_000);
    }
  } catch (error) {
    await stop(3000);
    throw error;
  }
  started = true;

  return {
    host,
    ports,
    dataDir,
    logDir,
    processes,
    events,
    urls: () => meshUrls(host, ports, candidatesOf(options)),
    kill: async (service, signal = "SIGTERM") => {
      const child = slotOf(service).child;
      if (!child) {
        return null;
      }
      child.kill(signal);
      return waitExit(child);
    },
    hold: async (service, signal = "SIGTERM") => {
      const slot = slotOf(service);
      slot.held = true;
      clearTimeout(slot.timer);
      slot.timer = undefined;
      emit({ service, kind: "held", line: `[${service}] stopped (${signal}) and held down` });
      const child = slot.child;
      if (!child || !running(child)) {
        return child?.exitCode ?? null;
      }
      child.kill(signal);
      child.kill("SIGCONT");
      return waitExit(child);
    },
    release: async (service) => {
      const slot = slotOf(service);
      slot.held = false;
      clearTimeout(slot.timer);
      slot.timer = undefined;
      if (slot.child && running(slot.child)) {
        return slot.readyAt || (await waitReady(slot, slot.child, options.readyTimeoutMs ?? 30_000));
      }
      slot.restarts++;
      const child = spawnChild(slot);
      const at = await waitReady(slot, child, options.readyTimeoutMs ?? 30_000);
      emit({
        service,
        kind: "released",
        restart: slot.restarts,
        ...(child.pid === undefined ? {} : { pid: child.pid }),
        line: `[${service}] started again and ready (pid ${child.pid})`,
      });
      return at;
    },
    whenReady: (service, timeoutMs = 30_000) => {
      const slot = slotOf(service);
      if (running(slot.child) && slot.readyAt > 0) {
        return Promise.resolve(slot.readyAt);
      }
      return new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          slot.waiters = slot.waiters.filter((waiter) => waiter.resolve !== done);
          reject(new Error(`${service} was not ready again within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (at: number) => {
          clearTimeout(timer);
          resolve(at);
        };
        slot.waiters.push({
          resolve: done,
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
      });
    },
    stop,
  };
}
