// A real Prometheus (Debian's `prometheus` package) for tests (vitest only: it polls with vi.waitUntil): a temporary data directory, a free port on
// 127.0.0.1, a generated configuration, and small helpers for its HTTP API.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { vi } from "vitest";
import { stringify } from "yaml";

export const PROMETHEUS = process.env.SHADOWMESH_PROMETHEUS_BIN ?? "/usr/bin/prometheus";

export interface ScrapeJob {
  job: string;
  targets: string[];
  labels?: Record<string, string>;
  /** Prometheus `metric_relabel_configs` of the job, as written in prometheus.yml. */
  metricRelabel?: Record<string, unknown>[];
}

export interface PrometheusOptions {
  port: number;
  jobs: ScrapeJob[];
  ruleFiles?: string[];
  /** Scrape and rule evaluation interval, e.g. "1s". */
  interval?: string;
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface QueryResult {
  ok: boolean;
  /** Prometheus' error (a parse error, a bad join …) when !ok. */
  error?: string;
  series: Sample[];
}

export interface RunningPrometheus {
  readonly url: string;
  readonly dir: string;
  query(expr: string, time?: number): Promise<QueryResult>;
  /** GET a path of the HTTP API and return its `data`. */
  api<T>(pathAndQuery: string): Promise<T>;
  stop(): Promise<void>;
  log(): string;
}

export function prometheusVersion(): string {
  const r = spawnSync(PROMETHEUS, ["--version"], { encoding: "utf8" });
  return `${r.stdout}${r.stderr}`.split("\n")[0] ?? "";
}

export async function startPrometheus(options: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = mkdtempSync(path.join(tmpdir(), "shadowmesh-prometheus-"));
  const interval = options.interval ?? "1s";
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: options.jobs.map((j) => ({
      job_name: j.job,
      static_configs: [{ targets: j.targets, labels: j.labels ?? {} }],
      ...(j.metricRelabel ? { metric_relabel_configs: j.metricRelabel } : {}),
    })),
  };
  const configFile = path.join(dir, "prometheus.yml");
  writeFileSync(configFile, stringify(config));
  const url = `http://127.0.0.1:${options.port}`;
  let output = "";
  const child: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${options.port}`,
      "--storage.tsdb.retention.time=1h",
      "--log.level=warn",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const response = await fetch(`${url}${pathAndQuery}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`${pathAndQuery}: ${body.error}`);
    return body.data;
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  // Ready within 20 s, or stopped and reported with its log; an exit fails at once (vi.waitUntil rethrows).
  await vi
    .waitUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}):\n${output}`);
        try {
          return (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok;
        } catch {
          return false; // not listening yet
        }
      },
      { timeout: 20_000, interval: 100 },
    )
    .catch(async (error: Error) => {
      await stop();
      throw error.message.startsWith("prometheus exited")
        ? error
        : new Error(`prometheus was not ready within 20 s (${error.message}):\n${output}`);
    });

  return {
    url,
    dir,
    api,
    async query(expr, time) {
      const params = new URLSearchParams({ query: expr });
      if (time !== undefined) params.set("time", String(time));
      const response = await fetch(`${url}/api/v1/query`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: params,
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await response.json()) as {
        status: string;
        error?: string;
        data?: { resultType: string; result: Sample[] | [number, string] };
      };
      if (body.status !== "success") return { ok: false, error: body.error, series: [] };
      const result = body.data?.result;
      if (body.data?.resultType === "scalar" && result) {
        return { ok: true, series: [{ metric: {}, value: result as [number, string] }] };
      }
      return { ok: true, series: (result as Sample[]) ?? [] };
    },
    stop,
    log: () => output,
  };
}
