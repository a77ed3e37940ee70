import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The local mesh: model-service PRIMARY (spam-v1), model-service SHADOW (spam-v2), metrics-service and app-service
 * as four child processes on 127.0.0.1 — what `npm start` runs and what the end-to-end tests start on free ports.
 * Every service is the built JavaScript (`services/<name>/dist/main.js`), configured only through its env.
 */

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export type ServiceName = "primary" | "shadow" | "metrics" | "app";

export interface MeshPorts {
  app: number;
  appMetrics: number;
  primary: number;
  primaryMetrics: number;
  shadow: number;
  shadowMetrics: number;
  metrics: number;
  metricsMetrics: number;
}

/** The documented defaults (README): app 8080, models 50051/50052, metrics-service 50053, /metrics on 910x. */
export const DEFAULT_PORTS: MeshPorts = {
  app: 8080,
  appMetrics: 9100,
  primary: 50051,
  primaryMetrics: 9101,
  shadow: 50052,
  shadowMetrics: 9102,
  metrics: 50053,
  metricsMetrics: 9103,
};

export interface MeshOptions {
  host?: string;
  /** Ports to use; `"free"` picks free ones (tests). */
  ports?: Partial<MeshPorts> | "free";
  /** Where metrics-service keeps its SQLite store. */
  dataDir?: string;
  /** Where each child's log goes (`<dir>/<service>.log`). */
  logDir?: string;
  /** Percentage of Predict calls app-service mirrors to the shadow (default 100). */
  mirrorPercent?: number;
  /** Extra environment for every child (for example LOG_LEVEL overrides). */
  env?: Record<string, string>;
  /** Called with each warning or error line a child logs (pino level ≥ 40), and with lines that are not JSON. */
  onLogLine?: (service: ServiceName, line: string) => void;
  /** How long to wait for every service to be ready. */
  readyTimeoutMs?: number;
}

export interface Mesh {
  readonly host: string;
  readonly ports: MeshPorts;
  readonly dataDir: string;
  readonly logDir: string;
  readonly processes: ReadonlyMap<ServiceName, ChildProcess>;
  /** Base URLs by service, for the table that `npm start` prints. */
  urls(): { name: string; url: string; what: string }[];
  /** Sends `signal` to one service and waits for it to exit. */
  kill(service: ServiceName, signal?: NodeJS.Signals): Promise<number | null>;
  /** Stops every service (SIGTERM, then SIGKILL after `timeoutMs`) and waits for all of them. */
  stop(timeoutMs?: number): Promise<void>;
}

export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function resolvePorts(ports: MeshOptions["ports"], host: string): Promise<MeshPorts> {
  if (ports === "free") {
    const entries = await Promise.all(
      Object.keys(DEFAULT_PORTS).map(async (key) => [key, await freePort(host)] as const),
    );
    return Object.fromEntries(entries) as unknown as MeshPorts;
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

function envFor(
  name: ServiceName,
  host: string,
  ports: MeshPorts,
  options: MeshOptions,
  dataDir: string,
  secret: string,
) {
  const at = (port: number) => `${host}:${port}`;
  switch (name) {
    case "primary":
    case "shadow": {
      const primary = name === "primary";
      return {
        MODEL_SERVICE_ROLE: primary ? "PRIMARY" : "SHADOW",
        MODEL_SERVICE_HOST: host,
        MODEL_SERVICE_GRPC_PORT: String(primary ? ports.primary : ports.shadow),
        MODEL_SERVICE_METRICS_PORT: String(primary ? ports.primaryMetrics : ports.shadowMetrics),
        MODEL_SERVICE_MODEL_DIR: path.join(ROOT, "models", primary ? "spam-v1" : "spam-v2"),
        MODEL_SERVICE_METRICS_SERVICE_ADDRESS: at(ports.metrics),
      };
    }
    case "metrics":
      return {
        METRICS_SERVICE_HOST: host,
        METRICS_SERVICE_GRPC_PORT: String(ports.metrics),
        METRICS_SERVICE_METRICS_PORT: String(ports.metricsMetrics),
        METRICS_SERVICE_DATA_DIR: dataDir,
        METRICS_SERVICE_FEEDBACK_SECRET: secret,
      };
    case "app":
      return {
        APP_SERVICE_HOST: host,
        APP_SERVICE_PORT: String(ports.app),
        APP_SERVICE_METRICS_PORT: String(ports.appMetrics),
        APP_SERVICE_MODEL_SERVICE_ADDRESS: at(ports.primary),
        APP_SERVICE_SHADOW_ADDRESS: at(ports.shadow),
        APP_SERVICE_MIRROR_PERCENT: String(options.mirrorPercent ?? 100),
        APP_SERVICE_METRICS_SERVICE_ADDRESS: at(ports.metrics),
        APP_SERVICE_WEB_DIR: path.join(ROOT, "web", "dist"),
        APP_SERVICE_FEEDBACK_SECRET: secret,
      };
  }
}

const ENTRY: Record<ServiceName, string> = {
  primary: "services/model-service/dist/main.js",
  shadow: "services/model-service/dist/main.js",
  metrics: "services/metrics-service/dist/main.js",
  app: "services/app-service/dist/main.js",
};

/** Start order: the collector first, then the models, then the public API that needs them. */
const ORDER: ServiceName[] = ["metrics", "primary", "shadow", "app"];

function opsPort(name: ServiceName, ports: MeshPorts): number {
  return {
    primary: ports.primaryMetrics,
    shadow: ports.shadowMetrics,
    metrics: ports.metricsMetrics,
    app: ports.appMetrics,
  }[name];
}

async function waitReady(
  name: ServiceName,
  url: string,
  child: ChildProcess,
  timeoutMs: number,
  tail: () => string,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail()}`,
      );
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (response.ok) {
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${name} was not ready at ${url} within ${timeoutMs} ms:\n${tail()}`);
}

function waitExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(child.exitCode);
  }
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

export async function startMesh(options: MeshOptions = {}): Promise<Mesh> {
  const host = options.host ?? "127.0.0.1";
  const ports = await resolvePorts(options.ports, host);
  const dataDir = options.dataDir ?? path.join(ROOT, ".data", "metrics");
  const logDir = options.logDir ?? path.join(ROOT, ".data", "logs");
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const secret = feedbackSecret(dataDir);
  const processes = new Map<ServiceName, ChildProcess>();
  // Never leave services behind, even if the launcher itself dies.
  process.once("exit", () => {
    for (const child of processes.values()) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
      }
    }
  });

  const stop = async (timeoutMs = 9000) => {
    const running = [...processes.values()].filter(
      (child) => child.exitCode === null && child.signalCode === null,
    );
    for (const child of running) {
      child.kill("SIGTERM");
    }
    const timer = setTimeout(() => {
      for (const child of running) {
        child.kill("SIGKILL");
      }
    }, timeoutMs);
    await Promise.all(running.map(waitExit));
    clearTimeout(timer);
  };

  try {
    for (const name of ORDER) {
      const entry = path.join(ROOT, ENTRY[name]);
      if (!existsSync(entry)) {
        throw new Error(`${entry} does not exist: run \`npm run build\` first`);
      }
      const child = spawn(process.execPath, [entry], {
        cwd: ROOT,
        env: { ...process.env, ...envFor(name, host, ports, options, dataDir, secret), ...options.env },
        stdio: ["ignore", "pipe", "pipe"],
        // Own process group: a terminal's Ctrl-C reaches only the launcher, which then stops each service once,
        // in order (a second signal would make a service skip its graceful shutdown).
        detached: true,
      });
      processes.set(name, child);
      const log = createWriteStream(path.join(logDir, `${name}.log`), { flags: "a" });
      const recent: string[] = [];
      let buffered = "";
      const onData = (chunk: Buffer) => {
        log.write(chunk);
        buffered += chunk.toString("utf8");
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) {
          recent.push(line);
          if (recent.length > 20) {
            recent.shift();
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
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("exit", () => log.end());
      await waitReady(
        name,
        `http://${host}:${opsPort(name, ports)}/readyz`,
        child,
        options.readyTimeoutMs ?? 30_000,
        () => recent.join("\n"),
      );
    }
  } catch (error) {
    await stop(2000);
    throw error;
  }

  return {
    host,
    ports,
    dataDir,
    logDir,
    processes,
    urls: () => [
      {
        name: "web app + Connect API",
        url: `http://${host}:${ports.app}`,
        what: "app-service (open in a browser)",
      },
      { name: "model-service primary", url: `grpc://${host}:${ports.primary}`, what: "spam-v1, gRPC h2c" },
      { name: "model-service shadow", url: `grpc://${host}:${ports.shadow}`, what: "spam-v2, gRPC h2c" },
      {
        name: "metrics-service",
        url: `grpc://${host}:${ports.metrics}`,
        what: "shadow comparison, gRPC h2c",
      },
      { name: "app-service metrics", url: `http://${host}:${ports.appMetrics}/metrics`, what: "Prometheus" },
      { name: "primary metrics", url: `http://${host}:${ports.primaryMetrics}/metrics`, what: "Prometheus" },
      { name: "shadow metrics", url: `http://${host}:${ports.shadowMetrics}/metrics`, what: "Prometheus" },
      {
        name: "metrics-service metrics",
        url: `http://${host}:${ports.metricsMetrics}/metrics`,
        what: "Prometheus",
      },
    ],
    kill: async (service, signal = "SIGTERM") => {
      const child = processes.get(service);
      if (!child) {
        return null;
      }
      child.kill(signal);
      return waitExit(child);
    },
    stop,
  };
}
