import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  createGrpcJsTransport,
  createLogger,
  inputFingerprint,
  PredictionReporter,
} from "@shadowmesh/common";
import { startService } from "@shadowmesh/common/testing";
import {
  MetricsService,
  type PredictionRecord,
  RecordSource,
  Role,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  deadAddress,
  FakeNetwork,
  fakeMetricsService,
  fakeModelService,
  hang,
  type PredictImpl,
} from "./testing/fakes.js";
import { type RunningApp, startApp } from "./testing/harness.js";
import { metricValue, WAIT } from "./testing/metric-value.js";

/**
 * Mirrored calls that fail reach the comparison: app-service reports them to metrics-service as the shadow's
 * records (role SHADOW, source MIRROR) with the code, its own elapsed time and the input fingerprint. The shadow
 * here is a fake that never answers (in memory), or a real port nobody listens on; metrics-service is a fake that
 * keeps what it gets, and in the last test the real metrics-service process on a real socket.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const cleanups: (() => Promise<void> | void)[] = [];
let running: RunningApp | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
  for (const cleanup of cleanups.splice(0)) {
    await cleanup();
  }
});

const hangingShadow = (): PredictImpl => ({
  predict: (_request, context) => hang(context),
  predictBatch: (_request, context) => hang(context),
});

async function mesh(options: {
  env?: Record<string, string>;
  shadow?: () => PredictImpl;
  shadowAddress?: string;
  primary?: () => PredictImpl;
}) {
  const records: PredictionRecord[] = [];
  const network = new FakeNetwork();
  const metrics = fakeMetricsService({
    reportPredictions: (request) => {
      records.push(...request.records);
      return { acceptedCount: request.records.length, duplicateCount: 0 };
    },
  });
  const shadowAddress =
    options.shadowAddress ?? network.add(fakeModelService("spam-v2", options.shadow), "shadow");
  running = await startApp(
    {
      MODEL_SERVICE_ADDRESS: network.add(fakeModelService("spam-v1", options.primary), "primary"),
      SHADOW_ADDRESS: shadowAddress,
      METRICS_SERVICE_ADDRESS: network.add(metrics, "metrics"),
      INSTANCE: "app-test-1",
      ...options.env,
    },
    network,
  );
  const client = createClient(
    PredictService,
    createConnectTransport({ baseUrl: running.baseUrl, httpVersion: "1.1" }),
  );
  return { client, records, registry: running.registry };
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

describe("failed mirrored calls", () => {
  it("are reported as the shadow's DEADLINE_EXCEEDED records, one per text, when the shadow hangs", async () => {
    const { client, records, registry } = await mesh({ env: { DEADLINE_MS: "300" }, shadow: hangingShadow });
    const single = await client.predict({ text: "Lunch at noon? Café on 5th" });
    const texts = ["free cash now", "see you at 3pm", "WIN a prize"];
    const batch = await client.predictBatch({ texts });
    // The user got the primary's answers at once; the shadow's failures arrive later, as records.
    expect(single.prediction?.modelName).toBe("spam-v1");
    await vi.waitUntil(() => records.length === 4, WAIT);
    const singleRecord = records.find((r) => r.requestId === single.prediction?.requestId);
    expect(singleRecord).toMatchObject({
      batchIndex: 0,
      role: Role.SHADOW,
      source: RecordSource.MIRROR,
      grpcStatusCode: Code.DeadlineExceeded,
      label: "",
      probabilities: [],
      instance: "app-test-1",
      input: { sha256: sha256("Lunch at noon? Café on 5th"), length: "Lunch at noon? Café on 5th".length },
    });
    // The latency is the call's elapsed time as the mirror saw it: the whole deadline, not the shadow's view.
    const latencyMs =
      Number(singleRecord?.latency?.seconds ?? 0n) * 1000 + (singleRecord?.latency?.nanos ?? 0) / 1e6;
    expect(latencyMs).toBeGreaterThan(150);
    const batchRecords = records
      .filter((r) => r.requestId === batch.predictions[0]?.requestId)
      .sort((a, b) => a.batchIndex - b.batchIndex);
    expect(batchRecords.map((r) => r.batchIndex)).toEqual([0, 1, 2]);
    for (const [i, record] of batchRecords.entries()) {
      expect(record.input).toEqual(inputFingerprint(texts[i] as string));
      expect(record.grpcStatusCode).toBe(Code.DeadlineExceeded);
    }
    await vi.waitUntil(
      async () => (await metricValue(registry, "app_mirror_reports_sent_total")) === 4,
      WAIT,
    );
    expect(await metricValue(registry, "app_mirror_failed_total", { code: "DeadlineExceeded" })).toBe(2);
  });

  it("are reported UNAVAILABLE when the shadow is down", async () => {
    const { client, records } = await mesh({ shadowAddress: await deadAddress() });
    const response = await client.predict({ text: "hello" });
    await vi.waitUntil(() => records.length === 1, WAIT);
    expect(records[0]).toMatchObject({
      requestId: response.prediction?.requestId,
      role: Role.SHADOW,
      source: RecordSource.MIRROR,
      grpcStatusCode: Code.Unavailable,
    });
  });

  it("name the shadow's model once an earlier answer named it", async () => {
    let hangNow = false;
    const { client, records, registry } = await mesh({
      env: { DEADLINE_MS: "300" },
      shadow: () => (hangNow ? hangingShadow() : {}),
    });
    await client.predict({ text: "hello" });
    // Let the successful mirror land before the shadow starts hanging.
    await vi.waitUntil(async () => (await metricValue(registry, "app_mirror_in_flight")) === 0, WAIT);
    hangNow = true;
    await client.predict({ text: "hello again" });
    await vi.waitUntil(() => records.length === 1, WAIT);
    expect(records[0]).toMatchObject({ modelName: "spam-v2", modelVersion: "2.0.0" });
  });

  it("take the shape of the primary's records: one record for a batch the primary refused, not one per text", async () => {
    // Attack: one PredictBatch with 300 texts (over the model's limit) while the shadow is down. The primary
    // refuses it and model-service reports that as one record (batch index 0); one shadow record per text would be
    // 299 unmatched shadow records from one request.
    const texts = Array.from({ length: 300 }, (_, i) => `text ${i}`);
    const refusing: PredictImpl = {
      predictBatch: () => {
        throw new ConnectError(
          "texts has 300 entries; the limit is 256 (max_batch_size)",
          Code.InvalidArgument,
        );
      },
    };
    const { client, records, registry } = await mesh({
      shadowAddress: await deadAddress(),
      primary: () => refusing,
    });
    await expect(client.predictBatch({ texts })).rejects.toMatchObject({ code: Code.InvalidArgument });
    await vi.waitUntil(
      async () => (await metricValue(registry, "app_mirror_failed_total", { code: "Unavailable" })) === 1,
      WAIT,
    );
    const app = running as RunningApp | undefined;
    running = undefined;
    await app?.close(); // flushes the reporter
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      batchIndex: 0,
      role: Role.SHADOW,
      source: RecordSource.MIRROR,
      grpcStatusCode: Code.Unavailable,
      input: inputFingerprint("text 0"),
    });
  });

  it("are not reported when the mirror was sampled out or dropped at the in-flight bound", async () => {
    const sampledOut = await mesh({ env: { MIRROR_PERCENT: "0" } });
    await sampledOut.client.predict({ text: "hello" });
    await running?.close();
    running = undefined;
    const bounded = await mesh({
      env: { MAX_MIRRORS_IN_FLIGHT: "1", DEADLINE_MS: "300" },
      shadow: hangingShadow,
    });
    for (let i = 0; i < 3; i++) {
      await bounded.client.predict({ text: `message ${i}` });
    }
    expect(
      await metricValue(bounded.registry, "app_mirror_dropped_total", { reason: "in_flight_limit" }),
    ).toBe(2);
    // Only the one mirrored call that timed out is reported; the two dropped ones feed the coverage check.
    await vi.waitUntil(() => bounded.records.length === 1, WAIT);
    const app = running as RunningApp | undefined;
    running = undefined;
    await app?.close();
    expect(bounded.records).toHaveLength(1);
    expect(sampledOut.records).toHaveLength(0);
  });
});

/** The real metrics-service as a child process on free ports (the common process harness); its gRPC address. */
async function startMetricsServiceProcess(): Promise<{ address: string; output: () => string }> {
  const main = path.join(ROOT, "services/metrics-service/dist/main.js");
  expect(existsSync(main), `${main} is missing: build first (npx tsc -b)`).toBe(true);
  const dataDir = mkdtempSync(path.join(tmpdir(), "app-mirror-metrics-"));
  const service = await startService({
    entry: main,
    cwd: ROOT,
    env: {
      METRICS_SERVICE_HOST: "127.0.0.1",
      METRICS_SERVICE_GRPC_PORT: "0",
      METRICS_SERVICE_METRICS_PORT: "0",
      METRICS_SERVICE_DATA_DIR: dataDir,
      // Longer than app-service's 300 ms deadline with room to spare: a MIRROR record is stamped when the mirrored
      // call ends, and on a busy machine the deadline's timer fires late (500 ms joined only some of the six).
      METRICS_SERVICE_JOIN_WINDOW_MS: "3000",
      METRICS_SERVICE_LOG_LEVEL: "info",
    },
  });
  cleanups.push(async () => {
    await service.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { address: `127.0.0.1:${service.ports.grpc}`, output: () => service.lines.join("\n") };
}

describe("failed mirrored calls against the real metrics-service", () => {
  it("show up in the comparison as the shadow's DEADLINE_EXCEEDED on the same inputs as the primary's", async () => {
    const metrics = await startMetricsServiceProcess();
    // The primary model-service reports its own answers, as model-service does (the fake primary does not).
    const metricsTransport = createGrpcJsTransport({ address: metrics.address });
    cleanups.push(() => metricsTransport.close());
    const metricsClient = createClient(MetricsService, metricsTransport);
    const primaryReporter = new PredictionReporter(
      metricsClient,
      {
        role: "PRIMARY",
        instance: "primary-1",
        includeRawText: false,
        queueSize: 100,
        batchSize: 50,
        intervalMs: 20,
        timeoutMs: 2000,
      },
      createLogger("primary-reporter", "silent"),
    );
    primaryReporter.start();
    cleanups.push(() => primaryReporter.close(1000));
    const network = new FakeNetwork();
    const primary = fakeModelService("spam-v1", () => ({
      predict: (request, context) => {
        const requestId = context.requestHeader.get("x-request-id") ?? "";
        primaryReporter.report({
          requestId,
          batchIndex: 0,
          modelName: "spam-v1",
          modelVersion: "1.0.0",
          label: "ham",
          labels: ["ham", "spam"],
          probabilities: [0.9, 0.1],
          latencyNs: 1_000_000,
          grpcStatusCode: 0,
          timeMs: Date.now(),
          text: request.text,
        });
        return { prediction: { label: "ham", modelName: "spam-v1", modelVersion: "1.0.0", requestId } };
      },
    }));
    const shadow = fakeModelService("spam-v2", hangingShadow);
    running = await startApp(
      {
        MODEL_SERVICE_ADDRESS: network.add(primary, "primary"),
        SHADOW_ADDRESS: network.add(shadow, "shadow"),
        // metrics-service names candidates by model name: this shadow never answers, so it is named here.
        SHADOW_NAME: "spam-v2",
        METRICS_SERVICE_ADDRESS: metrics.address,
        DEADLINE_MS: "300",
      },
      network,
    );
    const client = createClient(
      PredictService,
      createConnectTransport({ baseUrl: running.baseUrl, httpVersion: "1.1" }),
    );
    const calls = 6;
    for (let i = 0; i < calls; i++) {
      const response = await client.predict({ text: `message ${i}` });
      expect(response.prediction?.label).toBe("ham");
    }
    const n = BigInt(calls);
    let last = "";
    await vi
      .waitUntil(
        async () => {
          // A report call that fails (metrics-service busy) is one more poll, not the end of the test; the last
          // failure is printed if the condition never holds.
          const answer = await metricsClient.getShadowReport({}).catch((error: unknown) => {
            last = `GetShadowReport failed: ${String(error)}`;
            return undefined;
          });
          if (!answer) {
            return false;
          }
          const { report } = answer;
          last = JSON.stringify(report?.errors, (_, v) => (typeof v === "bigint" ? Number(v) : v));
          const shadowTimeouts = report?.errors.find(
            (e) => e.role === Role.SHADOW && e.grpcStatusCode === Code.DeadlineExceeded,
          );
          return report?.totals?.pairCount === n && shadowTimeouts?.count === n;
        },
        { timeout: 20_000, interval: 50 },
      )
      .catch((error: unknown) => {
        throw new Error(`${String(error)}; last: ${last}\n${metrics.output()}`);
      });
    // Stored is not yet acknowledged: the reporter counts a batch as sent when metrics-service's answer is back.
    const registry = running.registry;
    await vi.waitUntil(
      async () => (await metricValue(registry, "app_mirror_reports_sent_total")) === calls,
      WAIT,
    );
  });
});
