import { execFile } from "node:child_process";
import { copyFile, mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcJsTransport } from "@shadowmesh/common";
import { runToExit as runEntryToExit, type ServiceProcess, startService } from "@shadowmesh/common/testing";
import { Health, HealthCheckResponse_ServingStatus } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";
import {
  PredictRequestSchema,
  PredictService,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { REPO_ROOT } from "./config.js";
import { buildFixtureOnnx, writeFixtureModel } from "./testing/fixture-model.js";
import { latencyMs, openRawCall, startMetricsSink, tempDir } from "./testing/helpers.js";

/**
 * Tests against the real program (main.ts in a child process), called by real third-party clients: buf curl
 * (Go, through reflection) and Python grpcio. Every process listens on free ports (0) and is killed afterwards.
 */

const run = promisify(execFile);
const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), "main.ts");
const PYTHON = "/usr/bin/python3";

const BASE_ENV = {
  MODEL_SERVICE_GRPC_PORT: "0",
  MODEL_SERVICE_METRICS_PORT: "0",
  MODEL_SERVICE_METRICS_SERVICE_ADDRESS: "",
  MODEL_SERVICE_WATCH_MODEL: "false",
};

type Child = ServiceProcess & { address: string; metricsPort: number };

/** Starts main.ts through the common process harness and resolves once it logs "serving". */
async function startChild(env: Record<string, string>): Promise<Child> {
  const child = await startService({
    entry: MAIN,
    cwd: REPO_ROOT,
    env: { ...BASE_ENV, ...env },
    until: "serving",
  });
  return Object.assign(child, {
    address: `127.0.0.1:${child.ports.grpc}`,
    metricsPort: child.ports.metrics as number,
  });
}

async function kill(child: Child | undefined): Promise<void> {
  await child?.kill();
}

/** Runs main.ts to its exit and returns the exit code and stderr. */
async function runToExit(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return runEntryToExit({ entry: MAIN, cwd: REPO_ROOT, env: { ...BASE_ENV, ...env } });
}

/** connect clients of PredictService and Health on one grpc-js channel. */
function clients(address: string) {
  const transport = createGrpcJsTransport({ address });
  return {
    predict: createClient(PredictService, transport),
    health: createClient(Health, transport),
    close: () => transport.close(),
  };
}

describe("start-up validation", () => {
  it("exits non-zero with one line naming the file when the model is missing", async () => {
    const { code, stderr } = await runToExit({ MODEL_SERVICE_MODEL_DIR: "/nonexistent/spam-v9" });
    expect(code).toBe(1);
    expect(stderr.trim()).toBe("model-service: /nonexistent/spam-v9/model.json: not found");
  });

  it("exits non-zero with one line when the sha256 does not match the manifest", async () => {
    const dir = await tempDir();
    try {
      await writeFixtureModel(dir.dir, { corruptSha: true });
      const { code, stderr } = await runToExit({ MODEL_SERVICE_MODEL_DIR: dir.dir });
      expect(code).toBe(1);
      expect(stderr.trim().split("\n")).toHaveLength(1);
      expect(stderr).toMatch(
        new RegExp(`${dir.dir}/model\\.onnx: sha256 is [0-9a-f]{64} but model\\.json says`),
      );
    } finally {
      await dir.cleanup();
    }
  });

  it("exits non-zero with one line on a bad combination of settings", async () => {
    const { code, stderr } = await runToExit({
      MODEL_SERVICE_GRPC_PORT: "7000",
      MODEL_SERVICE_METRICS_PORT: "7000",
    });
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toMatch(/GRPC_PORT and MODEL_SERVICE_METRICS_PORT must differ/);
  });
});

describe("the real process with third-party clients", () => {
  let dir: { dir: string; cleanup: () => Promise<void> };
  let child: Child | undefined;

  beforeAll(async () => {
    dir = await tempDir();
    await writeFixtureModel(dir.dir, { version: "1.0.0" });
    child = await startChild({ MODEL_SERVICE_MODEL_DIR: dir.dir });
  });

  afterAll(async () => {
    await kill(child);
    await dir?.cleanup();
  });

  const buf = (args: string[]) =>
    run("npx", ["buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
      cwd: REPO_ROOT,
      timeout: 60_000,
    });

  it("lists the services through reflection with buf curl", async () => {
    const { stdout } = await buf(["--list-services", `http://${child?.address}`]);
    expect(stdout.split("\n")).toEqual(
      expect.arrayContaining(["shadowmesh.predict.v1.PredictService", "grpc.health.v1.Health"]),
    );
    const methods = await buf(["--list-methods", `http://${child?.address}`]);
    expect(methods.stdout).toContain("shadowmesh.predict.v1.PredictService/PredictBatch");
  });

  it("calls Predict with buf curl and no proto files", async () => {
    const { stdout } = await buf([
      "-H",
      "x-request-id: buf-curl-1",
      "-d",
      '{"text":"Congratulations, you won a FREE cruise"}',
      `http://${child?.address}/shadowmesh.predict.v1.PredictService/Predict`,
    ]);
    const { prediction } = JSON.parse(stdout) as { prediction: Record<string, unknown> };
    expect(prediction).toMatchObject({ label: "spam", requestId: "buf-curl-1", modelVersion: "1.0.0" });
  });

  it("calls Predict and the health check from Python grpcio with stubs generated from proto/", async () => {
    const out = await tempDir("model-service-py-");
    try {
      // Python's module path follows the proto's file path, and grpc/health/v1 would shadow the grpc package
      // itself, so the (unchanged) health.proto is compiled from a copy at another path; the wire is the same.
      await mkdir(path.join(out.dir, "protos", "healthcheck"), { recursive: true });
      await copyFile(
        path.join(REPO_ROOT, "proto", "grpc", "health", "v1", "health.proto"),
        path.join(out.dir, "protos", "healthcheck", "health.proto"),
      );
      for (const [root, file] of [
        [path.join(REPO_ROOT, "proto"), "shadowmesh/predict/v1/predict_service.proto"],
        [path.join(out.dir, "protos"), "healthcheck/health.proto"],
      ] as const) {
        await run(
          PYTHON,
          [
            "-m",
            "grpc_tools.protoc",
            `-I${root}`,
            `--python_out=${out.dir}`,
            `--grpc_python_out=${out.dir}`,
            file,
          ],
          { timeout: 60_000 },
        );
      }
      const script = path.join(out.dir, "client.py");
      await writeFile(
        script,
        `
import json, sys
import grpc
from shadowmesh.predict.v1 import predict_service_pb2 as p, predict_service_pb2_grpc as pg
from healthcheck import health_pb2 as h, health_pb2_grpc as hg

channel = grpc.insecure_channel(sys.argv[1])
response, call = pg.PredictServiceStub(channel).Predict.with_call(
    p.PredictRequest(text="free money, click now"), metadata=[("x-request-id", "python-1")], timeout=30)
headers = dict(call.initial_metadata())
try:
    pg.PredictServiceStub(channel).Predict(p.PredictRequest(text="   "), timeout=30)
    bad = "OK"
except grpc.RpcError as error:
    bad = error.code().name
health = hg.HealthStub(channel).Check(h.HealthCheckRequest(service=""), timeout=30)
print(json.dumps({
    "label": response.prediction.label,
    "request_id": response.prediction.request_id,
    "header_request_id": headers.get("x-request-id"),
    "scores": [[s.label, s.probability] for s in response.prediction.scores],
    "bad": bad,
    "health": h.HealthCheckResponse.ServingStatus.Name(health.status),
}))
`,
      );
      const { stdout } = await run(PYTHON, [script, child?.address ?? ""], {
        cwd: out.dir,
        env: { ...process.env, PYTHONPATH: out.dir },
        timeout: 60_000,
      });
      const result = JSON.parse(stdout) as Record<string, unknown>;
      expect(result).toMatchObject({
        label: "spam",
        request_id: "python-1",
        header_request_id: "python-1",
        bad: "INVALID_ARGUMENT",
        health: "SERVING",
      });
      expect((result.scores as [string, number][]).map(([label]) => label)).toEqual(["ham", "spam"]);
    } finally {
      await out.cleanup();
    }
  });

  it("reloads the model on SIGHUP", async () => {
    const client = clients(child?.address ?? "");
    try {
      await writeFixtureModel(dir.dir, { version: "1.1.0" });
      child?.process.kill("SIGHUP");
      await expect
        .poll(async () => (await client.predict.getModel({})).model?.version, {
          timeout: 30_000,
          interval: 50,
        })
        .toBe("1.1.0");
    } finally {
      client.close();
    }
  });
  it("calls that reach a stopped process and time out at the caller are never reported as OK", async () => {
    const dir = await tempDir();
    const sink = await startMetricsSink();
    let child: Child | undefined;
    const client = { current: undefined as ReturnType<typeof clients> | undefined };
    try {
      await writeFixtureModel(dir.dir);
      child = await startChild({
        MODEL_SERVICE_MODEL_DIR: dir.dir,
        MODEL_SERVICE_METRICS_SERVICE_ADDRESS: sink.address,
      });
      client.current = clients(child.address);
      const predict = client.current.predict;
      await predict.predict({ text: "warm up the connection" });
      child.process.kill("SIGSTOP");
      const ids = Array.from({ length: 5 }, (_, i) => `hung-${i}`);
      const codes = await Promise.all(
        ids.map((id) =>
          predict.predict({ text: `free ${id}` }, { timeoutMs: 300, headers: { "x-request-id": id } }).then(
            () => "ok",
            (error) => Code[ConnectError.from(error).code],
          ),
        ),
      );
      child.process.kill("SIGCONT");
      expect(codes).toEqual(ids.map(() => "DeadlineExceeded"));
      await predict.predict({ text: "marker" }, { headers: { "x-request-id": "hung-marker" } });
      await sink.waitFor((records) => records.some((r) => r.requestId === "hung-marker"));
      // Each either never reached a handler (a missing record: the coverage check counts it) or is reported with
      // the code its caller saw; none says OK.
      const reported = sink.records.filter((r) => ids.includes(r.requestId));
      expect(reported.filter((r) => r.grpcStatusCode === 0)).toEqual([]);
      for (const record of reported) {
        expect([Code.Canceled, Code.DeadlineExceeded]).toContain(record.grpcStatusCode);
      }
    } finally {
      client.current?.close();
      if (child) child.process.kill("SIGCONT");
      await kill(child);
      await sink.close();
      await dir.cleanup();
    }
  });
});

describe("hot reload of the real process after the model directory is replaced", () => {
  const replaceDir = async (parent: string, version: string) => {
    const next = path.join(parent, `next-${version}`);
    await writeFixtureModel(next, { version });
    await rm(path.join(parent, "model.old"), { recursive: true, force: true });
    await rename(path.join(parent, "model"), path.join(parent, "model.old"));
    await rename(next, path.join(parent, "model"));
  };
  const waitForVersion = async (address: string, version: string, signal?: () => void) => {
    const client = clients(address);
    try {
      signal?.();
      await expect
        .poll(async () => (await client.predict.getModel({})).model?.version, {
          timeout: 30_000,
          interval: 50,
        })
        .toBe(version);
    } finally {
      client.close();
    }
  };

  it("SIGHUP reloads from the new directory, and rejects a model.onnx that does not match the manifest", async () => {
    const parent = await tempDir();
    let child: Child | undefined;
    try {
      await writeFixtureModel(path.join(parent.dir, "model"), { version: "1.0.0" });
      child = await startChild({ MODEL_SERVICE_MODEL_DIR: path.join(parent.dir, "model") });
      const hup = () => child?.process.kill("SIGHUP");
      await replaceDir(parent.dir, "2.0.0");
      await waitForVersion(child.address, "2.0.0", hup);
      await writeFixtureModel(path.join(parent.dir, "model"), { version: "2.1.0" });
      await waitForVersion(child.address, "2.1.0", hup);
      // A model.onnx that is not the one model.json describes: rejected, counted, 2.1.0 keeps serving.
      await writeFile(
        path.join(parent.dir, "model", "model.onnx"),
        buildFixtureOnnx({ spamProbability: 0.7 }),
      );
      hup();
      const metricsUrl = `http://127.0.0.1:${child.metricsPort}/metrics`;
      const failedReloads = async () => {
        const text = await (await fetch(metricsUrl)).text();
        return /model_service_model_reloads_total\{result="failed"[^}]*\} (\d+)/.exec(text)?.[1] ?? "0";
      };
      await expect.poll(failedReloads, { timeout: 30_000, interval: 50 }).toBe("1");
      const rejected = child.lines.find((line) => line.includes('"msg":"model reload rejected'));
      expect(rejected).toMatch(/model\.onnx: sha256 is [0-9a-f]{64} but model\.json says/);
      await waitForVersion(child.address, "2.1.0");
    } finally {
      await kill(child);
      await parent.cleanup();
    }
  });

  it("the file watch follows the replaced directory (MODEL_SERVICE_WATCH_MODEL=true)", async () => {
    const parent = await tempDir();
    let child: Child | undefined;
    try {
      await writeFixtureModel(path.join(parent.dir, "model"), { version: "1.0.0" });
      child = await startChild({
        MODEL_SERVICE_MODEL_DIR: path.join(parent.dir, "model"),
        MODEL_SERVICE_WATCH_MODEL: "true",
      });
      await replaceDir(parent.dir, "2.0.0");
      await waitForVersion(child.address, "2.0.0");
      await writeFixtureModel(path.join(parent.dir, "model"), { version: "2.1.0" });
      await waitForVersion(child.address, "2.1.0");
      await replaceDir(parent.dir, "3.0.0");
      await waitForVersion(child.address, "3.0.0");
    } finally {
      await kill(child);
      await parent.cleanup();
    }
  });
});

describe("latency of a stopped process", () => {
  it("a call whose headers were read before a SIGSTOP reports the time stopped; metrics-service and /metrics see it", async () => {
    const dir = await tempDir();
    const sink = await startMetricsSink();
    let child: Child | undefined;
    try {
      await writeFixtureModel(dir.dir);
      child = await startChild({
        MODEL_SERVICE_MODEL_DIR: dir.dir,
        MODEL_SERVICE_METRICS_SERVICE_ADDRESS: sink.address,
      });
      const call = await openRawCall(child.address, "/shadowmesh.predict.v1.PredictService/Predict", {
        "x-request-id": "stopped-1",
      });
      const seen = process.hrtime.bigint(); // the process has read the call's headers
      child.process.kill("SIGSTOP");
      await new Promise((resolve) => setTimeout(resolve, 1000)); // stopped, as a hung shadow is
      child.process.kill("SIGCONT");
      const heldMs = Number(process.hrtime.bigint() - seen) / 1e6;
      call.send(toBinary(PredictRequestSchema, create(PredictRequestSchema, { text: "free money" })));
      expect((await call.result).status).toBe(0);
      call.close();
      await sink.waitFor((records) => records.some((r) => r.requestId === "stopped-1"));
      const record = sink.records.find((r) => r.requestId === "stopped-1");
      expect(record && latencyMs(record)).toBeGreaterThanOrEqual(heldMs);
      const metrics = await (await fetch(`http://127.0.0.1:${child.metricsPort}/metrics`)).text();
      const sum = metrics
        .split("\n")
        .find((line) => /^grpc_server_handling_seconds_sum\{[^}]*grpc_method="Predict"/.test(line));
      expect(Number(sum?.split(" ").pop())).toBeGreaterThanOrEqual(heldMs / 1000);
    } finally {
      if (child) child.process.kill("SIGCONT");
      await kill(child);
      await sink.close();
      await dir.cleanup();
    }
  });
});

describe("graceful shutdown", () => {
  it("on SIGTERM under load: NOT_SERVING, in-flight calls finish, reports are flushed, exit 0, no failures", async () => {
    const dir = await tempDir();
    const sink = await startMetricsSink();
    let child: Child | undefined;
    try {
      await writeFixtureModel(dir.dir);
      child = await startChild({
        MODEL_SERVICE_MODEL_DIR: dir.dir,
        MODEL_SERVICE_METRICS_SERVICE_ADDRESS: sink.address,
        MODEL_SERVICE_SHUTDOWN_DELAY_MS: "1500",
        MODEL_SERVICE_REPORT_INTERVAL_MS: "1000",
      });
      const client = clients(child.address);
      const { predict, health } = client;
      let notServing = false;
      const watching = (async () => {
        try {
          for await (const update of health.watch({ service: "" })) {
            if (update.status === HealthCheckResponse_ServingStatus.NOT_SERVING) {
              notServing = true; // a load balancer stops routing here
              return;
            }
          }
        } catch {
          notServing = true;
        }
      })();
      const ok: string[] = [];
      const failures: string[] = [];
      let sent = 0;
      const until = Date.now() + 45_000;
      const worker = async (w: number) => {
        while (!notServing && Date.now() < until && sent < 100_000) {
          const id = `term-${w}-${sent++}`;
          try {
            const { prediction } = await predict.predict(
              { text: `free stuff ${id}` },
              { headers: { "x-request-id": id } },
            );
            if (prediction?.requestId === id) ok.push(id);
            else failures.push(`${id}: wrong request id`);
          } catch (error) {
            failures.push(
              `${id}: ${Code[ConnectError.from(error).code]} ${ConnectError.from(error).rawMessage}`,
            );
          }
        }
      };
      const load = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
      await vi.waitFor(() => expect(ok.length).toBeGreaterThanOrEqual(200), {
        timeout: 45_000,
        interval: 10,
      });
      const { code: exitCode } = await child.stop("SIGTERM");
      await load;
      await watching;
      client.close();

      expect(failures).toEqual([]);
      expect(ok.length).toBeGreaterThanOrEqual(200);
      expect(exitCode).toBe(0);
      const reported = new Set(sink.records.map((r) => r.requestId));
      expect(ok.filter((id) => !reported.has(id))).toEqual([]);
      expect(child.lines.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
    } finally {
      await kill(child);
      await sink.close();
      await dir.cleanup();
    }
  });
});
