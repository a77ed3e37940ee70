import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePorts } from "@shadowmesh/common";

/**
 * `npm run bench:app`: app-service's end-to-end cost, measured with Debian's wrk (a C load generator: a Node client
 * would be the bottleneck) sending Connect JSON POSTs over HTTP/1.1 keep-alive. Not a test: it prints numbers.
 *
 * 1. Bridge ratio: throughput and p50/p99 of the real app-service (dist/main.js) forwarding Predict over grpc-js to a
 *    model-service stand-in that answers without inference (dist/bench/noop-upstream.js), divided by the same
 *    app-service HTTP stack answering in-process (dist/bench/direct-server.js: "without the hop").
 * 2. Mirroring cost: the primary's p99 with local mirroring at 0 % and at 100 % (to a second no-op upstream), at half
 *    of the capacity measured with mirroring off, paced with wrk's Lua delay().
 *
 * Servers (app-service and its upstreams) are pinned to core 0, wrk to core 1 (taskset). Each comparison runs in
 * alternating A/B rounds after a warm-up; the summary gives the median of the per-round ratios with min–max.
 * Options: --rounds N (default 3), --seconds S per run (default 5), --connections C (default 32), --upstream-cpu N
 * (default 0: the no-op upstreams share app-service's core, so the whole hop — client and server side — is paid on
 * one core; 1 puts them beside wrk, as if model-service had a machine of its own).
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DIST = path.join(ROOT, "services/app-service/dist");
const run = promisify(execFile);

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  const value = index >= 0 ? Number(process.argv[index + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`bench:app: --${name} needs a positive number`);
    process.exit(2);
  }
  return value;
}

const ROUNDS = option("rounds", 3);
const SECONDS = option("seconds", 5);
const CONNECTIONS = option("connections", 32);
const SERVER_CPU = "0";
const LOAD_CPU = cpus().length > 1 ? "1" : "0";
const upstreamIndex = process.argv.indexOf("--upstream-cpu");
const UPSTREAM_CPU = upstreamIndex >= 0 ? (process.argv[upstreamIndex + 1] ?? "0") : "0";
if (!/^\d+$/.test(UPSTREAM_CPU)) {
  console.error("bench:app: --upstream-cpu needs a CPU number");
  process.exit(2);
}
const TEXT =
  "Subject: Re: notes from Tuesday's design review\n\nHi all, attached are my notes from the review. The main open " +
  "question is whether the cache should live in the client library or in the server. Can we discuss it on Thursday?";

const children: ChildProcess[] = [];
const work = mkdtempSync(path.join(tmpdir(), "bench-app-"));

function cleanup() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
    }
  }
  rmSync(work, { recursive: true, force: true });
}
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

/** Starts `node <script> <args>` pinned to `cpu` (the server core unless told otherwise). */
function startPinned(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  cpu = SERVER_CPU,
): ChildProcess {
  const child = spawn("taskset", ["-c", cpu, process.execPath, script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(child);
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** Waits (bounded) until `url` answers a Predict with 200. */
async function waitPredict(url: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: TEXT }),
      });
      if (response.status === 200) {
        const body = (await response.json()) as { prediction?: { label?: string } };
        if (body.prediction?.label) {
          return;
        }
      }
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer Predict with 200`);
}

interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

function toMs(value: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!match) {
    return Number.NaN;
  }
  const number = Number(match[1]);
  return match[2] === "us" ? number / 1000 : match[2] === "s" ? number * 1000 : number;
}

function luaScript(delayMs: number): string {
  const file = path.join(work, `post-${delayMs}.lua`);
  const lines = [
    'wrk.method = "POST"',
    'wrk.headers["Content-Type"] = "application/json"',
    `wrk.body = ${JSON.stringify(JSON.stringify({ text: TEXT }))}`,
    "local errors = 0",
    "response = function(status, headers, body)",
    "  if status ~= 200 then errors = errors + 1 end",
    "end",
  ];
  if (delayMs > 0) {
    // Paces each connection: C connections × one request per (latency + delay) ≈ the target rate.
    lines.push(`delay = function() return ${delayMs} end`);
  }
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

async function wrk(url: string, seconds: number, delayMs = 0): Promise<WrkResult> {
  const { stdout } = await run(
    "taskset",
    [
      "-c",
      LOAD_CPU,
      "wrk",
      "-t1",
      `-c${CONNECTIONS}`,
      `-d${seconds}s`,
      "--latency",
      "-s",
      luaScript(delayMs),
      url,
    ],
    { maxBuffer: 1 << 20 },
  );
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const p50 = /\s50%\s+(\S+)/.exec(stdout)?.[1] ?? "";
  const p99 = /\s99%\s+(\S+)/.exec(stdout)?.[1] ?? "";
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors =
    non2xx + (socketErrors ? socketErrors.slice(1).reduce((sum, value) => sum + Number(value), 0) : 0);
  if (!Number.isFinite(rps)) {
    throw new Error(`cannot read wrk output:\n${stdout}`);
  }
  return { rps, p50Ms: toMs(p50), p99Ms: toMs(p99), errors };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};
const fmt = (value: number, digits = 2) => value.toFixed(digits);
const spread = (values: number[]) =>
  `${fmt(median(values))} (min ${fmt(Math.min(...values))}, max ${fmt(Math.max(...values))})`;

async function main() {
  for (const file of ["main.js", "bench/noop-upstream.js", "bench/direct-server.js"]) {
    if (!existsSync(path.join(DIST, file))) {
      console.error(`bench:app: ${path.join(DIST, file)} is missing; run \`npm run build\` first`);
      process.exit(1);
    }
  }
  const [primaryPort, shadowPort, directPort, appPort, appMetricsPort, mirrorPort, mirrorMetricsPort] =
    (await freePorts(7)) as [number, number, number, number, number, number, number];
  const path_ = "/shadowmesh.predict.v1.PredictService/Predict";

  console.log(
    `bench:app — wrk -t1 -c${CONNECTIONS}, ${SECONDS} s per run, ${ROUNDS} alternating rounds; app-service on CPU ${SERVER_CPU}, upstreams on CPU ${UPSTREAM_CPU}, wrk on CPU ${LOAD_CPU}`,
  );
  console.log(
    "Connect JSON POST over HTTP/1.1 keep-alive; upstreams answer without inference (the hop is measured)\n",
  );

  startPinned(
    path.join(DIST, "bench/noop-upstream.js"),
    [String(primaryPort), String(shadowPort)],
    {},
    UPSTREAM_CPU,
  );
  const direct = startPinned(path.join(DIST, "bench/direct-server.js"), [String(directPort)]);
  const appEnv = (port: number, metricsPort: number, mirrorPercent: string, shadow: string) => ({
    APP_SERVICE_PORT: String(port),
    APP_SERVICE_METRICS_PORT: String(metricsPort),
    APP_SERVICE_MODEL_SERVICE_ADDRESS: `127.0.0.1:${primaryPort}`,
    APP_SERVICE_SHADOW_ADDRESS: shadow,
    APP_SERVICE_MIRROR_PERCENT: mirrorPercent,
    APP_SERVICE_LOG_LEVEL: "warn",
  });
  const app = startPinned(path.join(DIST, "main.js"), [], appEnv(appPort, appMetricsPort, "100", ""));
  const directUrl = `http://127.0.0.1:${directPort}${path_}`;
  const appUrl = `http://127.0.0.1:${appPort}${path_}`;
  await waitPredict(directUrl);
  await waitPredict(appUrl);

  // 1. The bridge: with the hop vs without it.
  await wrk(directUrl, 2);
  await wrk(appUrl, 2);
  const bridge: { direct: WrkResult; app: WrkResult }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const first = round % 2 === 0;
    const a = first ? await wrk(directUrl, SECONDS) : await wrk(appUrl, SECONDS);
    const b = first ? await wrk(appUrl, SECONDS) : await wrk(directUrl, SECONDS);
    bridge.push(first ? { direct: a, app: b } : { direct: b, app: a });
  }
  await stop(direct);
  await stop(app);

  console.log(
    "1. Bridge: app-service → grpc-js → model-service stand-in, vs the same app-service answering in-process",
  );
  console.log("   round  direct rps  p50 ms  p99 ms | bridge rps  p50 ms  p99 ms | ratio  errors");
  bridge.forEach(({ direct: d, app: b }, index) => {
    console.log(
      `   ${String(index + 1).padStart(5)}  ${fmt(d.rps, 0).padStart(10)}  ${fmt(d.p50Ms).padStart(6)}  ${fmt(d.p99Ms).padStart(6)} | ${fmt(b.rps, 0).padStart(10)}  ${fmt(b.p50Ms).padStart(6)}  ${fmt(b.p99Ms).padStart(6)} | ${fmt(b.rps / d.rps).padStart(5)}  ${d.errors + b.errors}`,
    );
  });
  const bridgeRatios = bridge.map(({ direct: d, app: b }) => b.rps / d.rps);
  console.log(`   throughput ratio (bridge / direct): ${spread(bridgeRatios)}   target ≥ 0.50\n`);

  // 2. Mirroring at half of capacity: 0 % vs 100 %.
  const mirrorOff = startPinned(
    path.join(DIST, "main.js"),
    [],
    appEnv(mirrorPort, mirrorMetricsPort, "0", `127.0.0.1:${shadowPort}`),
  );
  const mirrorUrl = `http://127.0.0.1:${mirrorPort}${path_}`;
  await waitPredict(mirrorUrl);
  await wrk(mirrorUrl, 2);
  const capacity = await wrk(mirrorUrl, SECONDS);
  await stop(mirrorOff);
  const target = capacity.rps / 2;
  // Per connection: one request every CONNECTIONS / target seconds; the delay fills what the latency leaves.
  const delayMs = Math.max(1, Math.round((1000 * CONNECTIONS) / target - capacity.p50Ms));
  const paced: { percent: string; result: WrkResult }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const percent of round % 2 === 0 ? ["0", "100"] : ["100", "0"]) {
      const child = startPinned(
        path.join(DIST, "main.js"),
        [],
        appEnv(mirrorPort, mirrorMetricsPort, percent, `127.0.0.1:${shadowPort}`),
      );
      await waitPredict(mirrorUrl);
      await wrk(mirrorUrl, 2, delayMs);
      paced.push({ percent, result: await wrk(mirrorUrl, SECONDS, delayMs) });
      await stop(child);
    }
  }
  console.log(
    `2. Mirroring: capacity with mirroring off ${fmt(capacity.rps, 0)} rps; paced at ~${fmt(target, 0)} rps (delay ${delayMs} ms × ${CONNECTIONS} connections)`,
  );
  console.log("   round  mirror  rps      p50 ms  p99 ms  errors");
  paced.forEach(({ percent, result }, index) => {
    console.log(
      `   ${String(Math.floor(index / 2) + 1).padStart(5)}  ${percent.padStart(5)}%  ${fmt(result.rps, 0).padStart(7)}  ${fmt(result.p50Ms).padStart(6)}  ${fmt(result.p99Ms).padStart(6)}  ${result.errors}`,
    );
  });
  const p99Ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const pair = paced.slice(round * 2, round * 2 + 2);
    const off = pair.find((entry) => entry.percent === "0")?.result;
    const on = pair.find((entry) => entry.percent === "100")?.result;
    if (off && on) {
      p99Ratios.push(on.p99Ms / off.p99Ms);
    }
  }
  console.log(`   primary p99 ratio (100 % / 0 %): ${spread(p99Ratios)}   target ≤ 1.15`);
  const errors = [
    ...bridge.flatMap(({ direct: d, app: b }) => [d, b]),
    ...paced.map((entry) => entry.result),
  ].reduce((sum, result) => sum + result.errors, 0);
  if (errors > 0) {
    console.log(`\nwarning: ${errors} requests failed during the runs`);
  }
}

try {
  await main();
} catch (error) {
  console.error(`bench:app: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await Promise.all(children.map(stop));
  // Keep-alive sockets of fetch would hold the process open; the children are stopped, so leave now.
  process.exit();
}
