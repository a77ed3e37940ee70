/**
 * npm run bench:model — how close model-service comes to its two references (see
 * docs/architecture.md#why-grpc-js-inside-and-connect-node-at-the-edge), measured side by side in one run:
 *
 *   floor       onnxruntime-node's session.run in-process on the same model, at batch 1 and the batch sizes the
 *               batcher forms;
 *   ceiling     the same server stack (grpc-js + the @shadowmesh/common adapter, health, reflection, grpc metrics)
 *               answering Predict with a constant and no inference; plus the same no-op on connect-node's gRPC
 *               server, for the grpc-js vs connect-node comparison;
 *   service     model-service itself (reporting off), batching on and off.
 *
 * Load comes from h2load (nghttp2-client), not Node: it POSTs a pre-framed gRPC body (5-byte prefix + message) with
 * content-type application/grpc and te: trailers; latency percentiles come from its --log-file, and grpc-status is
 * checked once per server with `nghttp -v` (h2load only sees HTTP status). Servers are pinned to one core and h2load
 * to the other (taskset); every measured run follows a warm-up run; rounds alternate the order of the servers; the
 * ratios are medians of per-round paired ratios with min–max.
 *
 * Options: --model DIR (default models/spam-v1, or a generated fixture when it does not exist), --rounds N (5),
 * --seconds S per run (3), --concurrency 1,16,64, --server-core 0, --load-core 1, --json FILE.
 * This is a benchmark, not a test: nothing here is asserted, the targets are reported as met or missed.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DIST = path.join(ROOT, "services/model-service/dist");
const METHOD = "/shadowmesh.predict.v1.PredictService/Predict";
const TEXT =
  "Dear friend, you have been selected to receive a FREE gift card worth $500. Click the link below to claim it now.";

const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    rounds: { type: "string", default: "5" },
    seconds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "1,16,64" },
    "server-core": { type: "string", default: "0" },
    "load-core": { type: "string", default: "1" },
    json: { type: "string" },
  },
});
const rounds = Number(args.rounds);
const seconds = Number(args.seconds);
const concurrencies = String(args.concurrency).split(",").map(Number);
const serverCore = String(args["server-core"]);
const loadCore = String(args["load-core"]);

interface Server {
  name: string;
  port: number;
  metricsPort?: number;
  child: ChildProcess;
}

interface Run {
  rps: number;
  p50ms: number;
  p99ms: number;
  failed: number;
  /** Calls served per second of server CPU time (user + system): robust to other load on the machine. */
  callsPerCpuSec: number;
}

/** The CPU time (user + system) a process has used so far, in seconds (clock ticks are 1/100 s on Linux). */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const children: ChildProcess[] = [];
const cleanup = () => {
  for (const child of children) {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
};
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));

function grpcBody(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  const length: number[] = [];
  let n = bytes.length;
  while (n > 0x7f) {
    length.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  length.push(n);
  const message = Buffer.concat([Buffer.from([0x0a, ...length]), bytes]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** Spawns a server pinned to the server core; resolves when `ready` matches a line of its output. */
function startServer(
  name: string,
  command: string[],
  env: Record<string, string>,
  ready: (line: string) => { port: number; metricsPort?: number } | undefined,
): Promise<Server> {
  const child = spawn("taskset", ["-c", serverCore, ...command], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      for (const line of output.split("\n")) {
        const found = ready(line);
        if (found) {
          clearTimeout(timer);
          child.stdout?.off("data", onData);
          child.stdout?.resume();
          resolve({ name, child, ...found });
          return;
        }
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}:\n${output}`)));
  });
}

function startService(name: string, modelDir: string, batching: boolean): Promise<Server> {
  let ports: { port: number; metricsPort: number } | undefined;
  return startServer(
    name,
    ["node", path.join(DIST, "main.js")],
    {
      MODEL_SERVICE_MODEL_DIR: modelDir,
      MODEL_SERVICE_GRPC_PORT: "0",
      MODEL_SERVICE_METRICS_PORT: "0",
      MODEL_SERVICE_METRICS_SERVICE_ADDRESS: "",
      MODEL_SERVICE_WATCH_MODEL: "false",
      MODEL_SERVICE_LOG_LEVEL: "info",
      MODEL_SERVICE_BATCHING: String(batching),
    },
    (line) => {
      if (!line.startsWith("{")) return undefined;
      const parsed = JSON.parse(line) as { msg?: string; ports?: { grpc?: number; metrics?: number } };
      if (parsed.msg === "listening")
        ports = { port: parsed.ports?.grpc ?? 0, metricsPort: parsed.ports?.metrics ?? 0 };
      return parsed.msg === "serving" ? ports : undefined;
    },
  );
}

function startCeiling(name: string, kind: "grpc-js" | "connect"): Promise<Server> {
  return startServer(name, ["node", path.join(DIST, "bench/ceiling-server.js"), kind, "0"], {}, (line) => {
    const match = /^listening (\d+)/.exec(line);
    return match ? { port: Number(match[1]) } : undefined;
  });
}

/** One h2load run; `requests` bounds it in count, `timeout` in time. */
function h2load(server: Server, concurrency: number, requests: number, body: string, log?: string): Run {
  const out = execFileSync(
    "taskset",
    [
      "-c",
      loadCore,
      "h2load",
      "-t",
      "1",
      "-c",
      "1",
      "-m",
      String(concurrency),
      "-n",
      String(requests),
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      "-d",
      body,
      ...(log ? ["--log-file", log] : []),
      `http://127.0.0.1:${server.port}${METHOD}`,
    ],
    { encoding: "utf8", timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
  );
  const rps = Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0);
  const succeeded = Number(/(\d+) succeeded/.exec(out)?.[1] ?? 0);
  const failed = requests - succeeded;
  return { rps, p50ms: 0, p99ms: 0, failed, callsPerCpuSec: 0 };
}

async function percentiles(log: string): Promise<{ p50ms: number; p99ms: number }> {
  const durations = (await readFile(log, "utf8"))
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => Number(line.split("\t")[2]))
    .filter((n) => Number.isFinite(n))
    .sort((a, b) => a - b);
  const pick = (q: number) =>
    (durations[Math.min(durations.length - 1, Math.floor(q * durations.length))] ?? 0) / 1000;
  return { p50ms: pick(0.5), p99ms: pick(0.99) };
}

/** Warm-up run (also sizes the measured run to about `seconds`), then the measured run with a log. */
async function measure(server: Server, concurrency: number, body: string, dir: string): Promise<Run> {
  const warm = h2load(server, concurrency, Math.max(200, concurrency * 50), body);
  const requests = Math.max(concurrency * 20, Math.min(2_000_000, Math.round(warm.rps * seconds)));
  const log = path.join(dir, `h2load-${server.name}-${concurrency}.log`);
  const cpuBefore = await cpuSeconds(server.child.pid);
  const run = h2load(server, concurrency, requests, body, log);
  const cpu = (await cpuSeconds(server.child.pid)) - cpuBefore;
  return { ...run, ...(await percentiles(log)), callsPerCpuSec: cpu > 0 ? requests / cpu : Number.NaN };
}

function grpcStatusOk(server: Server, body: string): boolean {
  const out = execFileSync(
    "nghttp",
    [
      "-v",
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      "-d",
      body,
      `http://127.0.0.1:${server.port}${METHOD}`,
    ],
    { encoding: "latin1", timeout: 30_000 },
  );
  return /grpc-status: 0/.test(out);
}

async function batchSizeMean(server: Server): Promise<number | undefined> {
  if (!server.metricsPort) return undefined;
  const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
  const sum = Number(/model_service_batch_size_sum\{[^}]*\} ([\d.e+]+)/.exec(text)?.[1] ?? Number.NaN);
  const count = Number(/model_service_batch_size_count\{[^}]*\} ([\d.e+]+)/.exec(text)?.[1] ?? Number.NaN);
  return count > 0 ? sum / count : undefined;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  for (const tool of ["h2load", "nghttp", "taskset"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`]);
    } catch {
      throw new Error(`${tool} is missing: apt-get install nghttp2-client util-linux`);
    }
  }
  console.log("building model-service (tsc -b services/model-service) …");
  execFileSync("npx", ["tsc", "-b", "services/model-service"], { cwd: ROOT, stdio: "inherit" });

  const work = await mkdtemp(path.join(tmpdir(), "bench-model-"));
  try {
    let modelDir = args.model ? path.resolve(args.model) : path.join(ROOT, "models/spam-v1");
    if (!existsSync(path.join(modelDir, "model.json"))) {
      if (args.model) throw new Error(`${modelDir}/model.json does not exist`);
      modelDir = path.join(work, "fixture");
      execFileSync("node", [path.join(DIST, "bench/write-fixture.js"), modelDir], { cwd: ROOT });
      console.log(`models/spam-v1 does not exist yet: using a generated fixture model (${modelDir})`);
    }
    const manifest = JSON.parse(await readFile(path.join(modelDir, "model.json"), "utf8")) as {
      name: string;
      version: string;
    };
    const body = path.join(work, "predict.bin");
    await writeFile(body, grpcBody(TEXT));
    console.log(
      `model ${manifest.name}@${manifest.version}; servers on core ${serverCore}, h2load on core ${loadCore}; ` +
        `${rounds} rounds × ${seconds} s; concurrency ${concurrencies.join(", ")}`,
    );
    console.log(`load average before: ${(await readFile("/proc/loadavg", "utf8")).trim()}`);

    console.log("floor: session.run in-process …");
    const floorSizes = [1, 2, 4, 8, 16, 32, 64];
    const floorOut = execFileSync(
      "taskset",
      [
        "-c",
        serverCore,
        "node",
        path.join(DIST, "bench/floor.js"),
        modelDir,
        String(Math.min(2, seconds)),
        ...floorSizes.map(String),
      ],
      { cwd: ROOT, encoding: "utf8", timeout: 300_000 },
    );
    const floor = floorOut
      .trim()
      .split("\n")
      .map(
        (line) =>
          JSON.parse(line) as {
            batch: number;
            runsPerSec: number;
            textsPerSec: number;
            p50us: number;
            p99us: number;
          },
      );

    const servers = [
      await startCeiling("ceiling", "grpc-js"),
      await startCeiling("ceiling-connect", "connect"),
      await startService("service-batching", modelDir, true),
      await startService("service-no-batching", modelDir, false),
    ];
    for (const server of servers) {
      if (!grpcStatusOk(server, body)) throw new Error(`${server.name} did not answer with grpc-status: 0`);
    }
    console.log(`grpc-status 0 from every server (nghttp -v); measuring …`);

    const results = new Map<string, Run[]>();
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const concurrency of concurrencies) {
        for (const server of order) {
          const run = await measure(server, concurrency, body, work);
          const key = `${server.name}@${concurrency}`;
          results.set(key, [...(results.get(key) ?? []), run]);
        }
      }
      process.stdout.write(`  round ${round + 1}/${rounds} done\n`);
    }
    const batchMeans = await batchSizeMean(servers[2] as Server);

    // Report.
    console.log("\nFloor (onnxruntime-node session.run, in-process, one core):");
    console.log("  batch   runs/s      texts/s     p50 µs   p99 µs");
    for (const f of floor) {
      console.log(
        `  ${String(f.batch).padStart(5)} ${fmt(f.runsPerSec).padStart(9)} ${fmt(f.textsPerSec).padStart(12)} ${fmt(f.p50us, 1).padStart(9)} ${fmt(f.p99us, 1).padStart(8)}`,
      );
    }
    const floorP50ms = (floor[0]?.p50us ?? 0) / 1000;
    console.log(`\nServers (h2load, 1 connection, c concurrent streams; medians of ${rounds} runs):`);
    console.log(
      "  server                 c     req/s (min–max)              p50 ms   p99 ms   failed   calls/CPU-s",
    );
    for (const concurrency of concurrencies) {
      for (const server of servers) {
        const runs = results.get(`${server.name}@${concurrency}`) ?? [];
        const rps = runs.map((r) => r.rps);
        console.log(
          `  ${server.name.padEnd(20)} ${String(concurrency).padStart(3)} ${fmt(median(rps)).padStart(9)} (${fmt(Math.min(...rps))}–${fmt(Math.max(...rps))})`.padEnd(
            60,
          ) +
            `${fmt(median(runs.map((r) => r.p50ms)), 3).padStart(8)} ${fmt(median(runs.map((r) => r.p99ms)), 3).padStart(8)} ${String(runs.reduce((a, r) => a + r.failed, 0)).padStart(8)} ${fmt(median(runs.map((r) => r.callsPerCpuSec))).padStart(13)}`,
        );
      }
    }
    const ratio = (a: string, b: string, concurrency: number, field: "rps" | "callsPerCpuSec" = "rps") => {
      const as = results.get(`${a}@${concurrency}`) ?? [];
      const bs = results.get(`${b}@${concurrency}`) ?? [];
      const paired = as.map((r, i) => r[field] / (bs[i]?.[field] ?? Number.NaN));
      return { median: median(paired), min: Math.min(...paired), max: Math.max(...paired) };
    };
    console.log(
      "\nPaired ratios, median (min–max) over rounds: throughput (req/s) | efficiency (calls per CPU-s)",
    );
    const summary: Record<string, unknown> = {};
    for (const concurrency of concurrencies) {
      for (const [a, b] of [
        ["service-batching", "ceiling"],
        ["service-no-batching", "ceiling"],
        ["service-batching", "service-no-batching"],
        ["ceiling", "ceiling-connect"],
      ] as const) {
        const r = ratio(a, b, concurrency);
        const e = ratio(a, b, concurrency, "callsPerCpuSec");
        summary[`${a}/${b}@${concurrency}`] = { throughput: r, efficiency: e };
        console.log(
          `  c=${String(concurrency).padStart(2)}  ${`${a} / ${b}`.padEnd(42)} ${fmt(r.median, 2)} (${fmt(r.min, 2)}–${fmt(r.max, 2)})` +
            ` | ${fmt(e.median, 2)} (${fmt(e.min, 2)}–${fmt(e.max, 2)})`,
        );
      }
    }
    if (batchMeans !== undefined) {
      console.log(`\nMean batch size formed by the batcher over the whole run: ${fmt(batchMeans, 1)}`);
    }
    console.log("\nTargets:");
    const top = Math.max(...concurrencies);
    const high = ratio("service-batching", "ceiling", top);
    const highCpu = ratio("service-batching", "ceiling", top, "callsPerCpuSec");
    console.log(
      `  c=${top} with batching ≥ 0.80 × ceiling: throughput ${fmt(high.median, 2)} → ${high.median >= 0.8 ? "met" : "missed"}; ` +
        `calls per CPU-s ${fmt(highCpu.median, 2)} → ${highCpu.median >= 0.8 ? "met" : "missed"}`,
    );
    if (concurrencies.includes(1)) {
      const service = median((results.get("service-batching@1") ?? []).map((r) => r.p50ms));
      const ceiling = median((results.get("ceiling@1") ?? []).map((r) => r.p50ms));
      const bound = ceiling + floorP50ms + 0.1;
      console.log(
        `  c=1 p50 ≤ ceiling p50 + floor p50 + 0.1 ms: ${fmt(service, 3)} ≤ ${fmt(ceiling, 3)} + ${fmt(floorP50ms, 3)} + 0.1 = ${fmt(bound, 3)} → ${service <= bound ? "met" : "missed"}`,
      );
    }
    console.log(`load average after: ${(await readFile("/proc/loadavg", "utf8")).trim()}`);
    if (args.json) {
      await writeFile(
        args.json,
        JSON.stringify({ floor, results: Object.fromEntries(results), ratios: summary, batchMeans }, null, 2),
      );
    }
  } finally {
    cleanup();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
