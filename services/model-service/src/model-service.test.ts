import { rename, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { createGrpcJsTransport } from "@shadowmesh/common";
import { checkMetrics, codeOf } from "@shadowmesh/common/testing";
import { Health, HealthCheckResponse_ServingStatus } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";
import { Role } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import {
  PredictRequestSchema,
  PredictService,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Config } from "./config.js";
import { loadModel } from "./model.js";
import type { ModelLoader } from "./model-manager.js";
import { createModelService, type ModelService } from "./model-service.js";
import { buildFixtureOnnx, writeFixtureModel } from "./testing/fixture-model.js";
import {
  deferred,
  FakeClassifier,
  fakeInfo,
  latencyMs,
  openRawCall,
  quietLogger,
  startMetricsSink,
  tempDir,
  testConfig,
} from "./testing/helpers.js";

interface Running {
  service: ModelService;
  predict: Client<typeof PredictService>;
  health: Client<typeof Health>;
  address: string;
  metricsUrl: string;
  close(): Promise<void>;
}

async function startService(config: Config, loader?: ModelLoader, load = true): Promise<Running> {
  const service = createModelService(config, { logger: quietLogger(), ...(loader ? { loader } : {}) });
  const ports = await service.listen();
  if (load) {
    await service.ready();
  }
  const address = `127.0.0.1:${ports.grpc}`;
  const transport = createGrpcJsTransport({ address });
  const predict = createClient(PredictService, transport);
  const health = createClient(Health, transport);
  return {
    service,
    predict,
    health,
    address,
    metricsUrl: `http://127.0.0.1:${ports.metrics}/metrics`,
    async close() {
      transport.close();
      await service.stop();
    },
  };
}

describe("model-service with a fixture ONNX model", () => {
  let dir: { dir: string; cleanup: () => Promise<void> };
  let sink: Awaited<ReturnType<typeof startMetricsSink>>;
  let svc: Running;

  beforeAll(async () => {
    dir = await tempDir();
    await writeFixtureModel(dir.dir, { name: "spam-fixture", version: "1.0.0", maxTextChars: 200 });
    sink = await startMetricsSink();
    svc = await startService(
      testConfig({
        MODEL_DIR: dir.dir,
        ROLE: "SHADOW",
        METRICS_SERVICE_ADDRESS: sink.address,
        MAX_RECEIVE_BYTES: "4096",
        PREDICT_BATCH_MAX_TEXTS: "8",
        BATCH_MAX_SIZE: "3",
        INSTANCE: "test-instance",
      }),
    );
  });

  afterAll(async () => {
    await svc?.close();
    await sink?.close();
    await dir?.cleanup();
  });

  it("classifies a text and returns the request id in the metadata and in the prediction", async () => {
    let headerId: string | undefined;
    const response = await svc.predict.predict(
      { text: "Claim your FREE prize now" },
      {
        headers: { "x-request-id": "req-123" },
        onHeader: (h) => (headerId = String(h.get("x-request-id"))),
      },
    );
    expect(response.prediction).toMatchObject({
      label: "spam",
      modelName: "spam-fixture",
      modelVersion: "1.0.0",
      requestId: "req-123",
    });
    expect(response.prediction?.scores.map((s) => s.label)).toEqual(["ham", "spam"]);
    expect(response.prediction?.scores[1]?.probability).toBeCloseTo(0.9, 5);
    expect(response.prediction?.inferenceMs).toBeGreaterThan(0);
    expect(headerId).toBe("req-123");
  });

  it("generates a request id when the caller sends none", async () => {
    let headerId = "";
    const response = await svc.predict.predict(
      { text: "lunch tomorrow?" },
      { onHeader: (h) => (headerId = String(h.get("x-request-id"))) },
    );
    expect(response.prediction?.label).toBe("ham");
    expect(response.prediction?.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(headerId).toBe(response.prediction?.requestId);
  });

  it("classifies a batch in order, even when it is split into several runs", async () => {
    const texts = ["free money", "hi mum", "meeting at 3", "FREE cruise", "ok", "win free stuff", "thanks"];
    const response = await svc.predict.predictBatch({ texts }, { headers: { "x-request-id": "batch-1" } });
    expect(response.predictions.map((p) => p.label)).toEqual([
      "spam",
      "ham",
      "ham",
      "spam",
      "ham",
      "spam",
      "ham",
    ]);
    expect(response.predictions.every((p) => p.requestId === "batch-1")).toBe(true);
  });

  it("describes the loaded model", async () => {
    const { model } = await svc.predict.getModel({});
    expect(model).toMatchObject({
      name: "spam-fixture",
      version: "1.0.0",
      labels: ["ham", "spam"],
      maxTextChars: 200,
      maxBatchSize: 8,
      decisionThreshold: 0.5,
      opset: 20,
      trainingMetrics: { accuracy: 0.9, f1: 0.85 },
    });
    expect(model?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(model?.loadTime).toBeDefined();
  });

  it("answers bad input with clear codes and keeps serving", async () => {
    const errors = await Promise.all([
      svc.predict.predict({ text: "" }).catch((e) => e),
      svc.predict.predict({ text: " \n\t " }).catch((e) => e),
      svc.predict.predict({ text: "x".repeat(201) }).catch((e) => e),
      svc.predict.predictBatch({ texts: Array(9).fill("hello") }).catch((e) => e),
      svc.predict.predictBatch({ texts: ["ok", ""] }).catch((e) => e),
      svc.predict.predictBatch({ texts: [] }).catch((e) => e),
    ]);
    for (const error of errors) {
      expect(ConnectError.from(error).code).toBe(Code.InvalidArgument);
    }
    expect(ConnectError.from(errors[2]).rawMessage).toMatch(
      /201 characters \(Unicode code points\); the limit is 200/,
    );
    expect(ConnectError.from(errors[3]).rawMessage).toMatch(/the limit is 8/);
    expect(ConnectError.from(errors[4]).rawMessage).toMatch(/texts\[1\]/);
    expect(await codeOf(svc.predict.predict({ text: "still alive" }))).toBe("ok");
  });

  it("counts text of only NUL, zero-width, format or control characters as empty, in Predict and PredictBatch", async () => {
    const blanks = [
      "\0",
      "\0\0\0",
      "\u200b\u200c\u200d",
      "\u2060\ufeff",
      "\u00ad\u202e",
      "\0 \u200b\n\u3000\u2028",
    ];
    for (const text of blanks) {
      const error = ConnectError.from(await svc.predict.predict({ text }).catch((e) => e));
      expect(error.code, JSON.stringify(text)).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toBe(
        "text must not be empty: it has only whitespace, control, format or zero-width characters",
      );
      const batchError = ConnectError.from(
        await svc.predict.predictBatch({ texts: ["fine", text] }).catch((e) => e),
      );
      expect(batchError.code).toBe(Code.InvalidArgument);
      expect(batchError.rawMessage).toMatch(/^texts\[1\] must not be empty/);
    }
    // Content wrapped in zero-width characters is still content.
    const { prediction } = await svc.predict.predict({ text: "\u200bfree\u200b\ufeff" });
    expect(prediction?.label).toBe("spam");
    // A NUL before content would hide it from the model (ONNX Runtime cuts string tensors at NUL): refused.
    const hidden = ConnectError.from(await svc.predict.predict({ text: "\0free money" }).catch((e) => e));
    expect(hidden.code).toBe(Code.InvalidArgument);
    expect(hidden.rawMessage).toMatch(/^text contains a NUL character \(U\+0000\) at position 0/);
  });

  it("counts the length limit in characters (code points), with astral characters at the boundary", async () => {
    const emoji = "\u{1f600}"; // one character, two UTF-16 code units, four UTF-8 bytes
    const atLimit = await svc.predict.predict({ text: emoji.repeat(200) });
    expect(atLimit.prediction?.label).toBe("ham");
    const mixed = await svc.predict.predictBatch({ texts: [`free ${emoji.repeat(195)}`, emoji.repeat(200)] });
    expect(mixed.predictions.map((p) => p.label)).toEqual(["spam", "ham"]);
    const over = ConnectError.from(await svc.predict.predict({ text: emoji.repeat(201) }).catch((e) => e));
    expect(over.code).toBe(Code.InvalidArgument);
    expect(over.rawMessage).toBe(
      "text has 201 characters (Unicode code points); the limit is 200 (max_text_chars)",
    );
    const overInBatch = ConnectError.from(
      await svc.predict.predictBatch({ texts: [emoji.repeat(200), `x${emoji.repeat(200)}`] }).catch((e) => e),
    );
    expect(overInBatch.rawMessage).toMatch(/^texts\[1\] has 201 characters/);
  });

  it("refuses a message over the receive limit with RESOURCE_EXHAUSTED", async () => {
    expect(await codeOf(svc.predict.predict({ text: "y".repeat(10_000) }))).toBe(Code.ResourceExhausted);
    expect(await codeOf(svc.predict.predict({ text: "still alive" }))).toBe("ok");
  });

  it("answers a malformed protobuf with an error code instead of crashing", async () => {
    const client = new grpc.Client(svc.address, grpc.credentials.createInsecure());
    try {
      const code = await new Promise<number>((resolve) => {
        client.makeUnaryRequest(
          "/shadowmesh.predict.v1.PredictService/Predict",
          (bytes: Buffer) => bytes,
          (bytes: Buffer) => bytes,
          Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
          (error) => resolve(error?.code ?? 0),
        );
      });
      expect(code).not.toBe(0);
    } finally {
      client.close();
    }
    expect(await codeOf(svc.predict.predict({ text: "still alive" }))).toBe("ok");
  });

  it("reports every call to metrics-service with role, model, label, probabilities, latency and code", async () => {
    await svc.predict.predict({ text: "free gift" }, { headers: { "x-request-id": "report-ok" } });
    await codeOf(svc.predict.predict({ text: "" }, { headers: { "x-request-id": "report-bad" } }));
    await svc.predict.predictBatch(
      { texts: ["a", "free b"] },
      { headers: { "x-request-id": "report-batch" } },
    );
    await sink.waitFor((records) =>
      ["report-ok", "report-bad", "report-batch"].every((id) => records.some((r) => r.requestId === id)),
    );
    const ok = sink.records.find((r) => r.requestId === "report-ok");
    expect(ok).toMatchObject({
      role: Role.SHADOW,
      modelName: "spam-fixture",
      modelVersion: "1.0.0",
      label: "spam",
      grpcStatusCode: 0,
      batchIndex: 0,
      instance: "test-instance",
    });
    expect(ok?.probabilities.map((p) => p.label)).toEqual(["ham", "spam"]);
    expect(ok?.input?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(ok?.input?.length).toBe("free gift".length);
    expect(ok?.input?.text).toBe("");
    expect(ok?.time).toBeDefined();
    expect(Number(ok?.latency?.seconds ?? 0n) * 1e9 + (ok?.latency?.nanos ?? 0)).toBeGreaterThan(0);
    const bad = sink.records.find((r) => r.requestId === "report-bad");
    expect(bad).toMatchObject({ role: Role.SHADOW, grpcStatusCode: Code.InvalidArgument, label: "" });
    const batch = sink.records.filter((r) => r.requestId === "report-batch");
    expect(batch.map((r) => [r.batchIndex, r.label])).toEqual([
      [0, "ham"],
      [1, "spam"],
    ]);
  });

  it("reports SERVING through grpc.health.v1 for the server and for PredictService", async () => {
    for (const service of ["", "shadowmesh.predict.v1.PredictService"]) {
      const response = await svc.health.check({ service });
      expect(response.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    }
  });

  it("exports the metrics the issue lists, and promtool finds them clean", async () => {
    const text = await (await fetch(svc.metricsUrl)).text();
    for (const name of [
      "process_cpu_seconds_total",
      'grpc_server_handled_total{grpc_type="unary",grpc_service="shadowmesh.predict.v1.PredictService",grpc_method="Predict",grpc_code="InvalidArgument"',
      'grpc_server_handled_total{grpc_type="unary",grpc_service="shadowmesh.predict.v1.PredictService",grpc_method="Predict",grpc_code="OK"',
      "grpc_server_handling_seconds_bucket",
      'model_service_predictions_total{model="spam-fixture",version="1.0.0",label="spam",service="model-service",role="SHADOW"}',
      "model_service_prediction_score_bucket",
      "model_service_inference_seconds_bucket",
      "model_service_batch_size_bucket",
      "model_service_wait_seconds_bucket",
      'model_service_model_info{name="spam-fixture",version="1.0.0",sha256="',
      "model_service_report_queue_depth",
      'model_service_report_dropped_total{reason="queue_full"',
      'model_service_model_reloads_total{result="failed"',
    ]) {
      expect(text).toContain(name);
    }
    const checked = await checkMetrics(text);
    expect(checked.output).toBe("");
    expect(checked.code).toBe(0);
  });
});

describe("model-service health and deadlines with a controllable model", () => {
  it("reports NOT_SERVING until the model is loaded", async () => {
    const loaded = deferred();
    const model = new FakeClassifier();
    const svc = await startService(
      testConfig({ MODEL_DIR: "/nowhere" }),
      async () => {
        await loaded.promise;
        return model;
      },
      false,
    );
    const starting = svc.service.ready();
    try {
      const { health, predict } = svc;
      try {
        expect((await health.check({ service: "" })).status).toBe(
          HealthCheckResponse_ServingStatus.NOT_SERVING,
        );
        expect(await codeOf(predict.predict({ text: "hello" }))).toBe(Code.Unavailable);
        const updates = health
          .watch({ service: "shadowmesh.predict.v1.PredictService" })
          [Symbol.asyncIterator]();
        expect((await updates.next()).value?.status).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
        loaded.resolve();
        await starting;
        expect((await updates.next()).value?.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
        await updates.return?.();
        expect(await codeOf(predict.predict({ text: "hello" }))).toBe("ok");
      } finally {
        loaded.resolve();
      }
    } finally {
      await starting.catch(() => undefined);
      await svc.close();
    }
  });

  it("does not run a call whose deadline passes while it is queued (DEADLINE_EXCEEDED)", async () => {
    const model = new FakeClassifier();
    const svc = await startService(testConfig({ MODEL_DIR: "/nowhere" }), async () => model);
    try {
      const gate = deferred();
      model.gate = gate.promise;
      const blocker = svc.predict.predict({ text: "blocker" });
      await vi.waitFor(() => expect(model.runs.length).toBeGreaterThan(0), { timeout: 20_000, interval: 5 });
      const late = codeOf(svc.predict.predict({ text: "too late" }, { timeoutMs: 50 }));
      expect(await late).toBe(Code.DeadlineExceeded);
      // The client's clock ran out first; make sure the server's copy of the deadline has passed too.
      await new Promise((resolve) => setTimeout(resolve, 100));
      model.gate = undefined;
      gate.resolve();
      await blocker;
      expect(await codeOf(svc.predict.predict({ text: "after" }))).toBe("ok");
      expect(model.runs.flat()).not.toContain("too late");
    } finally {
      await svc.close();
    }
  });
});

describe("latency includes the time a call waits before and after its handler starts", () => {
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const waitSum = async (metricsUrl: string) => {
    const text = await (await fetch(metricsUrl)).text();
    return Number(/^model_service_wait_seconds_sum\{[^}]*\} (\S+)$/m.exec(text)?.[1] ?? "0");
  };
  const handlingSum = async (metricsUrl: string) => {
    const text = await (await fetch(metricsUrl)).text();
    const line = text
      .split("\n")
      .find((l) => /^grpc_server_handling_seconds_sum\{[^}]*grpc_method="Predict"/.test(l));
    return Number(line?.split(" ").pop() ?? "0");
  };

  it("a call queued behind a slow batch reports the time it waited, to metrics-service and in the histogram", async () => {
    const model = new FakeClassifier();
    const sink = await startMetricsSink();
    const svc = await startService(
      testConfig({ MODEL_DIR: "/nowhere", METRICS_SERVICE_ADDRESS: sink.address }),
      async () => model,
    );
    try {
      const before = await handlingSum(svc.metricsUrl);
      const waitedBefore = await waitSum(svc.metricsUrl);
      const gate = deferred();
      model.gate = gate.promise;
      const blocker = svc.predict.predict(
        { text: "blocker" },
        { headers: { "x-request-id": "slow-blocker" } },
      );
      await vi.waitFor(() => expect(model.runs.length).toBeGreaterThan(0), { timeout: 20_000, interval: 5 });
      const queued = svc.predict.predict({ text: "queued" }, { headers: { "x-request-id": "slow-queued" } });
      await vi.waitFor(() => expect(svc.service.batcher.queued).toBeGreaterThan(0), {
        timeout: 20_000,
        interval: 5,
      });
      const held = process.hrtime.bigint();
      await pause(300); // the slow batch
      const heldMs = Number(process.hrtime.bigint() - held) / 1e6;
      model.gate = undefined;
      gate.resolve();
      await Promise.all([blocker, queued]);
      await sink.waitFor((records) => records.filter((r) => r.requestId.startsWith("slow-")).length === 2);
      for (const id of ["slow-blocker", "slow-queued"]) {
        const record = sink.records.find((r) => r.requestId === id);
        expect(record && latencyMs(record), id).toBeGreaterThanOrEqual(heldMs);
      }
      expect((await handlingSum(svc.metricsUrl)) - before).toBeGreaterThanOrEqual((2 * heldMs) / 1000);
      // The queued call waited for its run at least as long as the batch was held.
      expect((await waitSum(svc.metricsUrl)) - waitedBefore).toBeGreaterThanOrEqual(heldMs / 1000);
    } finally {
      await svc.close();
      await sink.close();
    }
  });

  it("a call the caller gave up on while it ran is reported with the caller's code, not OK", async () => {
    const model = new FakeClassifier();
    const sink = await startMetricsSink();
    const svc = await startService(
      testConfig({ MODEL_DIR: "/nowhere", METRICS_SERVICE_ADDRESS: sink.address }),
      async () => model,
    );
    try {
      // Deadline: the client gives up after 300 ms while the run is held (grpc-js answers DEADLINE_EXCEEDED).
      let gate = deferred();
      model.gate = gate.promise;
      const late = codeOf(
        svc.predict.predict({ text: "late" }, { timeoutMs: 300, headers: { "x-request-id": "late-1" } }),
      );
      await vi.waitFor(() => expect(model.runs.length).toBeGreaterThan(0), { timeout: 20_000, interval: 5 });
      expect(await late).toBe(Code.DeadlineExceeded);
      await pause(200); // the server's copy of the deadline (from the receipt of the headers) passes too
      gate.resolve();
      // Cancel: the client aborts while the run is held.
      gate = deferred();
      model.gate = gate.promise;
      const abort = new AbortController();
      const gone = codeOf(
        svc.predict.predict(
          { text: "gone" },
          { signal: abort.signal, headers: { "x-request-id": "gone-1" } },
        ),
      );
      await vi.waitFor(() => expect(model.runs.length).toBeGreaterThanOrEqual(2), {
        timeout: 20_000,
        interval: 5,
      });
      abort.abort();
      expect(await gone).toBe(Code.Canceled);
      await svc.predict.getModel({}); // a round trip on the same connection: the server has read the RST_STREAM
      model.gate = undefined;
      gate.resolve();
      await sink.waitFor(
        (records) => records.filter((r) => ["late-1", "gone-1"].includes(r.requestId)).length === 2,
      );
      const codeOfRecord = (id: string) => sink.records.find((r) => r.requestId === id)?.grpcStatusCode;
      expect(codeOfRecord("late-1")).toBe(Code.DeadlineExceeded);
      expect(codeOfRecord("gone-1")).toBe(Code.Canceled);
      expect(await codeOf(svc.predict.predict({ text: "after" }))).toBe("ok");
    } finally {
      await svc.close();
      await sink.close();
    }
  });

  it("counts from the receipt of the request headers, before the message arrived and the handler ran", async () => {
    const sink = await startMetricsSink();
    const svc = await startService(
      testConfig({ MODEL_DIR: "/nowhere", METRICS_SERVICE_ADDRESS: sink.address }),
      async () => new FakeClassifier(),
    );
    try {
      const before = await handlingSum(svc.metricsUrl);
      const call = await openRawCall(svc.address, "/shadowmesh.predict.v1.PredictService/Predict", {
        "x-request-id": "slow-upload",
      });
      const seen = process.hrtime.bigint(); // the server has read the headers by now
      await pause(300); // a slow upload (or a busy event loop): the message arrives later
      const sentAfterMs = Number(process.hrtime.bigint() - seen) / 1e6;
      call.send(toBinary(PredictRequestSchema, create(PredictRequestSchema, { text: "free money" })));
      expect((await call.result).status).toBe(0);
      call.close();
      await sink.waitFor((records) => records.some((r) => r.requestId === "slow-upload"));
      const record = sink.records.find((r) => r.requestId === "slow-upload");
      expect(record?.label).toBe("spam");
      expect(record && latencyMs(record)).toBeGreaterThanOrEqual(sentAfterMs);
      expect((await handlingSum(svc.metricsUrl)) - before).toBeGreaterThanOrEqual(sentAfterMs / 1000);
      expect(await waitSum(svc.metricsUrl)).toBeGreaterThanOrEqual(sentAfterMs / 1000);
    } finally {
      await svc.close();
      await sink.close();
    }
  });
});

describe("hot reload", () => {
  it("switches to a new model under load with zero failed calls, and rejects a broken one", async () => {
    const dir = await tempDir();
    const svc0 = { current: undefined as Running | undefined };
    try {
      await writeFixtureModel(dir.dir, { name: "spam-fixture", version: "1.0.0" });
      const svc = await startService(testConfig({ MODEL_DIR: dir.dir }));
      svc0.current = svc;
      const seen = new Set<string>();
      let failures = 0;
      let calls = 0;
      let stop = false;
      const until = Date.now() + 30_000;
      const worker = async () => {
        while (!stop && Date.now() < until && calls < 200_000) {
          calls++;
          try {
            const { prediction } = await svc.predict.predict({ text: `free offer ${calls}` });
            seen.add(prediction?.modelVersion ?? "?");
          } catch {
            failures++;
          }
        }
      };
      const load = Promise.all(Array.from({ length: 8 }, worker));
      await vi.waitFor(() => expect(calls).toBeGreaterThanOrEqual(50), { timeout: 20_000, interval: 5 });

      await writeFixtureModel(dir.dir, { name: "spam-fixture", version: "2.0.0", spamProbability: 0.7 });
      expect(await svc.service.reload("test")).toBe("loaded");
      expect((await svc.predict.getModel({})).model?.version).toBe("2.0.0");
      const callsAfterReload = calls;
      await vi.waitFor(() => expect(calls).toBeGreaterThanOrEqual(callsAfterReload + 50), {
        timeout: 20_000,
        interval: 5,
      });

      await writeFixtureModel(dir.dir, { name: "spam-fixture", version: "3.0.0", corruptSha: true });
      expect(await svc.service.reload("test")).toBe("failed");
      await writeFixtureModel(dir.dir, { name: "spam-fixture", version: "4.0.0", garbageOnnx: true });
      expect(await svc.service.reload("test")).toBe("failed");
      expect((await svc.predict.getModel({})).model?.version).toBe("2.0.0");
      const callsAfterBroken = calls;
      await vi.waitFor(() => expect(calls).toBeGreaterThanOrEqual(callsAfterBroken + 50), {
        timeout: 20_000,
        interval: 5,
      });
      stop = true;
      await load;

      expect(failures).toBe(0);
      expect([...seen].sort()).toEqual(["1.0.0", "2.0.0"]);
      const { prediction } = await svc.predict.predict({ text: "free" });
      expect(prediction?.scores[1]?.probability).toBeCloseTo(0.7, 5);
      const metrics = await (await fetch(svc.metricsUrl)).text();
      expect(metrics).toMatch(/model_service_model_reloads_total\{result="failed"[^}]*\} 2/);
      expect(metrics).toMatch(/model_service_model_reloads_total\{result="loaded"[^}]*\} 1/);
      expect(metrics).toContain('model_service_model_info{name="spam-fixture",version="2.0.0"');
      expect(metrics).not.toContain('model_service_model_info{name="spam-fixture",version="1.0.0"');
    } finally {
      await svc0.current?.close();
      await dir.cleanup();
    }
  });

  it("reloads by itself when the files in the model directory change", async () => {
    const dir = await tempDir();
    await writeFixtureModel(dir.dir, { version: "1.0.0" });
    const svc = await startService(testConfig({ MODEL_DIR: dir.dir, WATCH_MODEL: "true" }));
    try {
      await writeFixtureModel(dir.dir, { version: "1.1.0" });
      await expect
        .poll(async () => (await svc.predict.getModel({})).model?.version, { timeout: 20_000, interval: 50 })
        .toBe("1.1.0");
    } finally {
      await svc.close();
      await dir.cleanup();
    }
  });

  const waitForVersion = async (svc: Running, version: string, timeoutMs = 20_000) => {
    await expect
      .poll(async () => (await svc.predict.getModel({})).model?.version, { timeout: timeoutMs, interval: 50 })
      .toBe(version);
  };
  const failedReloads = async (svc: Running) => {
    const text = await (await fetch(svc.metricsUrl)).text();
    return Number(/model_service_model_reloads_total\{result="failed"[^}]*\} (\d+)/.exec(text)?.[1] ?? "0");
  };

  it("rejects a model.onnx that does not match the manifest's sha256 (watch and SIGHUP), counts it, keeps serving", async () => {
    const dir = await tempDir();
    await writeFixtureModel(dir.dir, { version: "1.0.0" });
    const svc = await startService(testConfig({ MODEL_DIR: dir.dir, WATCH_MODEL: "true" }));
    try {
      // Another valid ONNX model under the unchanged model.json (same name, version and sha256).
      await writeFile(path.join(dir.dir, ".model.onnx.tmp"), buildFixtureOnnx({ spamProbability: 0.7 }));
      await rename(path.join(dir.dir, ".model.onnx.tmp"), path.join(dir.dir, "model.onnx"));
      await expect
        .poll(() => failedReloads(svc), { timeout: 20_000, interval: 50 })
        .toBeGreaterThanOrEqual(1);
      const failedByWatch = await failedReloads(svc);
      expect(await svc.service.reload("SIGHUP")).toBe("failed");
      expect(await failedReloads(svc)).toBe(failedByWatch + 1);
      const { prediction } = await svc.predict.predict({ text: "free" });
      expect(prediction?.modelVersion).toBe("1.0.0");
      expect(prediction?.scores[1]?.probability).toBeCloseTo(0.9, 5); // the old model, not the 0.7 one
      // The matching manifest arrives: the new model is loaded.
      await writeFixtureModel(dir.dir, { version: "1.0.1", spamProbability: 0.7 });
      await waitForVersion(svc, "1.0.1");
      expect((await svc.predict.predict({ text: "free" })).prediction?.scores[1]?.probability).toBeCloseTo(
        0.7,
        5,
      );
    } finally {
      await svc.close();
      await dir.cleanup();
    }
  });

  it.each([
    ["renamed (mv dir dir.old && mv new dir)", "rename"],
    ["a symlink swapped atomically (ln -s new tmp && mv -T tmp dir)", "symlink"],
  ])("follows a model directory that is %s, and keeps watching the new one", async (_what, style) => {
    const parent = await tempDir();
    const modelDir = path.join(parent.dir, "model");
    if (style === "rename") {
      await writeFixtureModel(modelDir, { version: "1.0.0" });
    } else {
      await writeFixtureModel(path.join(parent.dir, "v1"), { version: "1.0.0" });
      await symlink(path.join(parent.dir, "v1"), modelDir);
    }
    const svc = await startService(testConfig({ MODEL_DIR: modelDir, WATCH_MODEL: "true" }));
    try {
      const next = path.join(parent.dir, "v2");
      await writeFixtureModel(next, { version: "2.0.0" });
      if (style === "rename") {
        await rename(modelDir, path.join(parent.dir, "model.old"));
        await rename(next, modelDir);
      } else {
        await symlink(next, path.join(parent.dir, "tmp"));
        await rename(path.join(parent.dir, "tmp"), modelDir);
      }
      await waitForVersion(svc, "2.0.0");
      // Further changes inside the new directory are seen: the watch moved with MODEL_DIR.
      await writeFixtureModel(modelDir, { version: "2.1.0" });
      await waitForVersion(svc, "2.1.0");
      expect(await svc.service.reload("SIGHUP")).toBe("unchanged");
    } finally {
      await svc.close();
      await parent.cleanup();
    }
  });

  it("follows Kubernetes ConfigMap-style updates (files are symlinks through ..data, swapped atomically)", async () => {
    const dir = await tempDir();
    // What the kubelet's atomic writer does: a timestamped directory, ..data pointing at it, and the visible files
    // as symlinks through ..data; an update writes a new directory and renames a new ..data symlink over the old.
    const publish = async (stamp: string, version: string) => {
      await writeFixtureModel(path.join(dir.dir, stamp), { version });
      await symlink(stamp, path.join(dir.dir, "..data_tmp"));
      await rename(path.join(dir.dir, "..data_tmp"), path.join(dir.dir, "..data"));
    };
    await publish("..2025_01_01_00_00_00.1", "1.0.0");
    await symlink("..data/model.onnx", path.join(dir.dir, "model.onnx"));
    await symlink("..data/model.json", path.join(dir.dir, "model.json"));
    const svc = await startService(testConfig({ MODEL_DIR: dir.dir, WATCH_MODEL: "true" }));
    try {
      expect((await svc.predict.getModel({})).model?.version).toBe("1.0.0");
      await publish("..2025_01_01_00_01_00.2", "2.0.0");
      await rm(path.join(dir.dir, "..2025_01_01_00_00_00.1"), { recursive: true });
      await waitForVersion(svc, "2.0.0");
      await publish("..2025_01_01_00_02_00.3", "3.0.0");
      await waitForVersion(svc, "3.0.0");
    } finally {
      await svc.close();
      await dir.cleanup();
    }
  });

  it("finishes in-flight runs on the old session and closes it afterwards", async () => {
    const first = new FakeClassifier(fakeInfo({ version: "1.0.0", sha256: "1".repeat(64) }));
    const second = new FakeClassifier(fakeInfo({ version: "2.0.0", sha256: "2".repeat(64) }));
    const models = [first, second];
    const svc = await startService(testConfig({ MODEL_DIR: "/nowhere" }), async () => {
      const next = models.shift();
      if (!next) throw new Error("no more models");
      return next;
    });
    try {
      const gate = deferred();
      first.gate = gate.promise;
      const inFlight = svc.predict.predict({ text: "old" });
      await vi.waitFor(() => expect(first.runs.length).toBeGreaterThan(0), { timeout: 20_000, interval: 5 });
      expect(await svc.service.reload("test")).toBe("loaded");
      // PredictBatch runs at once (a Predict would queue behind the held run: one dynamic batch at a time).
      expect((await svc.predict.predictBatch({ texts: ["new"] })).predictions[0]?.modelVersion).toBe("2.0.0");
      expect(first.closed).toBe(false);
      first.gate = undefined;
      gate.resolve();
      expect((await inFlight).prediction?.modelVersion).toBe("1.0.0");
      await vi.waitFor(() => expect(first.closed).toBe(true), { timeout: 5000, interval: 5 });
    } finally {
      await svc.close();
    }
  });
});

describe("the fixture ONNX model", () => {
  it("loads through the same checks as a bundled model", async () => {
    const dir = await tempDir();
    try {
      await writeFixtureModel(dir.dir);
      const model = await loadModel(dir.dir);
      expect(model.info.name).toBe("spam-fixture");
      const output = await model.classify(["free money", "Hello"]);
      expect(output.labels).toEqual(["spam", "ham"]);
      await model.close();
    } finally {
      await dir.cleanup();
    }
  });

  it.each([
    [{ corruptSha: true }, /model\.onnx: sha256 is [0-9a-f]{64} but model\.json says/],
    [{ garbageOnnx: true }, /model\.onnx: ONNX Runtime cannot load it/],
    [{ manifest: { inputName: "body" } }, /model\.onnx: has no input "body"/],
    [{ manifest: { labels: ["no", "yes"] } }, /model\.onnx: smoke prediction returned the label/],
    [{ manifest: { maxTextChars: -1 } }, /model\.json: "maxTextChars" must be a positive integer/],
  ])("refuses a broken model (%o) with one line naming the file", async (options, message) => {
    const dir = await tempDir();
    try {
      await writeFixtureModel(dir.dir, options);
      const error = await loadModel(dir.dir).catch((e: Error) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toContain(dir.dir);
      expect((error as Error).message).not.toContain("\n");
    } finally {
      await dir.cleanup();
    }
  });

  it("names a missing model file", async () => {
    const error = await loadModel(path.join("/nonexistent", "spam")).catch((e: Error) => e);
    expect((error as Error).message).toBe("/nonexistent/spam/model.json: not found");
  });
});
