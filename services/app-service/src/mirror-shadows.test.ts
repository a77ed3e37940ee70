import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  type PredictionRecord,
  RecordSource,
  Role,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  FakeNetwork,
  fakeMetricsService,
  fakeModelService,
  hang,
  type PredictImpl,
  serveFake,
  startStandInProcess,
} from "./testing/fakes.js";
import { type RunningApp, startApp } from "./testing/harness.js";
import { metricValue } from "./testing/metric-value.js";

/**
 * Mirroring to several shadows (candidates, APP_SERVICE_SHADOWS): each shadow has its own sampling, in-flight bound,
 * metrics label, faults and failure records, and one slow or dead shadow never delays the primary or another shadow.
 * Shadows are in memory, except in the last test: a real process stopped with SIGSTOP beside a real healthy server.
 */

const cleanups: (() => Promise<void> | void)[] = [];
let running: RunningApp | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
  for (const cleanup of cleanups.splice(0)) {
    await cleanup();
  }
});

const hanging = (): PredictImpl => ({
  predict: (_request, context) => hang(context),
  predictBatch: (_request, context) => hang(context),
});

/** A primary, two shadows spam-v2 and spam-lite (in memory) and a metrics-service that keeps the MIRROR records. */
async function mesh(options: {
  shadows: (v2: string, lite: string) => string;
  v2?: () => PredictImpl;
  lite?: () => PredictImpl;
  env?: Record<string, string>;
}) {
  const network = new FakeNetwork();
  const records: PredictionRecord[] = [];
  const primary = fakeModelService("spam-v1");
  const v2 = fakeModelService("spam-v2", options.v2);
  const lite = fakeModelService("spam-lite", options.lite);
  const metrics = fakeMetricsService({
    reportPredictions: (request) => {
      records.push(...request.records);
      return { acceptedCount: request.records.length, duplicateCount: 0 };
    },
  });
  running = await startApp(
    {
      MODEL_SERVICE_ADDRESS: network.add(primary, "primary"),
      SHADOWS: options.shadows(network.add(v2, "spam-v2"), network.add(lite, "spam-lite")),
      METRICS_SERVICE_ADDRESS: network.add(metrics, "metrics"),
      ...options.env,
    },
    network,
  );
  const client = createClient(
    PredictService,
    createConnectTransport({ baseUrl: running.baseUrl, httpVersion: "1.1" }),
  );
  return { primary, v2, lite, records, client, registry: running.registry, app: running.app };
}

const waitFor = (check: () => unknown | Promise<unknown>) =>
  vi.waitFor(check, { timeout: 10_000, interval: 20 });

describe("mirroring to several shadows", () => {
  it("sends each call to every shadow with the same join key and deadline; metrics are labelled by shadow", async () => {
    const { primary, v2, lite, client, registry } = await mesh({
      shadows: (v2, lite) => `spam-v2=${v2},spam-lite=${lite}`,
      env: { DEADLINE_MS: "1500" },
    });
    const response = await client.predict({ text: "free cash" }, { headers: { "x-request-id": "multi-1" } });
    expect(response.prediction?.modelName).toBe("spam-v1");
    await client.predictBatch({ texts: ["a", "b"] });
    await waitFor(() => {
      expect(v2.calls).toHaveLength(2);
      expect(lite.calls).toHaveLength(2);
    });
    for (const shadow of [v2, lite]) {
      expect(shadow.calls.map((call) => call.requestId)).toEqual(primary.calls.map((call) => call.requestId));
      expect(shadow.calls[0]?.clientRequestId).toBe("multi-1");
      expect(shadow.calls[0]?.timeoutMs).toBeGreaterThan(0);
      expect(shadow.calls[0]?.timeoutMs).toBeLessThanOrEqual(1500);
    }
    for (const shadow of ["spam-v2", "spam-lite"]) {
      expect(await metricValue(registry, "app_mirror_sent_total", { shadow })).toBe(2);
      expect(await metricValue(registry, "app_mirror_sent_total", { shadow, method: "PredictBatch" })).toBe(
        1,
      );
    }
  });

  it("samples each shadow with its own percentage", async () => {
    const { v2, lite, client, registry } = await mesh({
      shadows: (v2, lite) => `spam-v2=${v2};percent=100,spam-lite=${lite};percent=0`,
    });
    for (let i = 0; i < 5; i++) {
      await client.predict({ text: `message ${i}` });
    }
    await waitFor(() => expect(v2.calls).toHaveLength(5));
    expect(lite.calls).toHaveLength(0);
    expect(await metricValue(registry, "app_mirror_sampled_out_total", { shadow: "spam-lite" })).toBe(5);
    expect(await metricValue(registry, "app_mirror_sampled_out_total", { shadow: "spam-v2" })).toBe(0);
  });

  it("bounds each shadow's calls in flight on its own: a hanging shadow fills only its bound", async () => {
    const { v2, lite, client, registry, app } = await mesh({
      shadows: (v2, lite) => `spam-v2=${v2};inflight=2,spam-lite=${lite};inflight=3`,
      v2: hanging,
      env: { DEADLINE_MS: "20000" },
    });
    for (let i = 0; i < 8; i++) {
      expect((await client.predict({ text: `message ${i}` })).prediction?.modelName).toBe("spam-v1");
    }
    // The healthy shadow's bound (3) is never reached: its calls end; the hanging one's stay.
    await waitFor(() => expect(lite.calls).toHaveLength(8));
    expect(v2.calls).toHaveLength(2);
    const [hung, healthy] = app.mirrors;
    expect(hung?.name).toBe("spam-v2");
    expect(hung?.inFlight).toBe(2);
    await waitFor(() => expect(healthy?.inFlight).toBe(0));
    expect(
      await metricValue(registry, "app_mirror_dropped_total", {
        shadow: "spam-v2",
        reason: "in_flight_limit",
      }),
    ).toBe(6);
    expect(await metricValue(registry, "app_mirror_dropped_total", { shadow: "spam-lite" })).toBe(0);
    expect(await metricValue(registry, "app_mirror_in_flight", { shadow: "spam-v2" })).toBe(2);
    expect(await metricValue(registry, "app_mirror_in_flight", { shadow: "spam-lite" })).toBe(0);
  });

  it("reports each shadow's failed calls under its own model name", async () => {
    const { client, records, registry } = await mesh({
      shadows: (v2, lite) => `spam-v2=${v2},spam-lite=${lite}`,
      v2: hanging,
      env: { DEADLINE_MS: "300" },
    });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await client.predict({ text: `message ${i}` })).prediction?.requestId ?? "");
    }
    // Only spam-v2 failed (DEADLINE_EXCEEDED): three records, named spam-v2 although it never answered.
    await waitFor(() => expect(records).toHaveLength(3));
    for (const record of records) {
      expect(record).toMatchObject({
        modelName: "spam-v2",
        role: Role.SHADOW,
        source: RecordSource.MIRROR,
        grpcStatusCode: Code.DeadlineExceeded,
      });
    }
    expect(records.map((record) => record.requestId).sort()).toEqual([...ids].sort());
    expect(
      await metricValue(registry, "app_mirror_failed_total", { shadow: "spam-v2", code: "DeadlineExceeded" }),
    ).toBe(3);
    expect(await metricValue(registry, "app_mirror_failed_total", { shadow: "spam-lite" })).toBe(0);
  });

  it("injects the SHADOW_FAULT_* faults into every shadow, counted and reported per shadow", async () => {
    const { v2, lite, client, records, registry } = await mesh({
      shadows: (v2, lite) => `spam-v2=${v2},spam-lite=${lite}`,
      env: { SHADOW_FAULT_ABORT_CODE: "UNAVAILABLE", SHADOW_FAULT_ABORT_PERCENT: "100" },
    });
    for (let i = 0; i < 2; i++) {
      await client.predict({ text: `message ${i}` });
    }
    await waitFor(() => expect(records).toHaveLength(4));
    expect(v2.calls).toHaveLength(0);
    expect(lite.calls).toHaveLength(0);
    expect(records.map((record) => record.modelName).sort()).toEqual([
      "spam-lite",
      "spam-lite",
      "spam-v2",
      "spam-v2",
    ]);
    for (const shadow of ["spam-v2", "spam-lite"]) {
      expect(await metricValue(registry, "app_shadow_faults_injected_total", { shadow, kind: "abort" })).toBe(
        2,
      );
    }
  });

  it("names the one shadow of SHADOW_ADDRESS by SHADOW_NAME, or labels it with its address", async () => {
    const network = new FakeNetwork();
    const records: PredictionRecord[] = [];
    const shadow = fakeModelService("spam-v2", hanging);
    const shadowAddress = network.add(shadow, "shadow");
    const metrics = network.add(
      fakeMetricsService({
        reportPredictions: (request) => {
          records.push(...request.records);
          return {};
        },
      }),
    );
    const primary = network.add(fakeModelService("spam-v1"));
    const env = {
      MODEL_SERVICE_ADDRESS: primary,
      METRICS_SERVICE_ADDRESS: metrics,
      SHADOW_ADDRESS: shadowAddress,
    };
    running = await startApp({ ...env, SHADOW_NAME: "spam-v2", DEADLINE_MS: "300" }, network);
    const client = createClient(
      PredictService,
      createConnectTransport({ baseUrl: running.baseUrl, httpVersion: "1.1" }),
    );
    await client.predict({ text: "hello" });
    // Named before it ever answered.
    await waitFor(() => expect(records).toHaveLength(1));
    expect(records[0]?.modelName).toBe("spam-v2");
    expect(await metricValue(running.registry, "app_mirror_sent_total", { shadow: "spam-v2" })).toBe(1);
    await running.close();
    running = await startApp(env, network);
    await createClient(
      PredictService,
      createConnectTransport({ baseUrl: running.baseUrl, httpVersion: "1.1" }),
    ).predict({ text: "hello" });
    expect(await metricValue(running.registry, "app_mirror_sent_total", { shadow: shadowAddress })).toBe(1);
  });
});

describe("one stopped shadow beside a healthy one, under load", () => {
  it("never delays the primary or the healthy shadow; the stopped one holds only its bound", async () => {
    // The stopped candidate: a real model-service stand-in (grpc-js server) in its own process, then SIGSTOP.
    const stand = await startStandInProcess();
    cleanups.push(() => stand.kill());
    const child = stand.child;
    // The healthy candidate, on a real socket too.
    const healthy = fakeModelService("spam-lite");
    const healthyServer = await serveFake(healthy);
    cleanups.push(() => healthyServer.close());
    const network = new FakeNetwork();
    const primary = fakeModelService("spam-v1");
    const bound = 4;
    running = await startApp(
      {
        MODEL_SERVICE_ADDRESS: network.add(primary, "primary"),
        SHADOWS: `stopped=${stand.address};inflight=${bound},spam-lite=${healthyServer.address};inflight=1000`,
        // Long enough that no mirrored call to the stopped shadow ends during the test.
        DEADLINE_MS: "30000",
      },
      network,
    );
    const { registry, app } = running;
    const client = createClient(
      PredictService,
      createConnectTransport({ baseUrl: running.baseUrl, httpVersion: "1.1" }),
    );
    // Warm both connections up, then stop the candidate.
    await client.predict({ text: "warm-up" });
    await vi.waitFor(() => expect(app.mirrors[0]?.inFlight).toBe(0), { timeout: 10_000 });
    child.kill("SIGSTOP");

    // 100 calls, 10 at a time.
    const total = 100;
    let next = 0;
    const answered: string[] = [];
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < total) {
          const i = next++;
          const response = await client.predict({ text: `message ${i}` });
          answered.push(response.prediction?.modelName ?? "");
        }
      }),
    );
    // Every user got the primary's answer while the stopped shadow still holds its calls: nobody waited for it.
    expect(answered).toHaveLength(total);
    expect(new Set(answered)).toEqual(new Set(["spam-v1"]));
    const [stopped, lite] = app.mirrors;
    expect(stopped?.inFlight).toBe(bound);
    expect(await metricValue(registry, "app_mirror_sent_total", { shadow: "stopped" })).toBe(1 + bound);
    expect(
      await metricValue(registry, "app_mirror_dropped_total", {
        shadow: "stopped",
        reason: "in_flight_limit",
      }),
    ).toBe(total - bound);
    // The healthy candidate got every mirrored call, none dropped, none failed.
    await vi.waitFor(() => expect(healthy.calls).toHaveLength(total + 1), { timeout: 20_000 });
    // (Received is not yet answered: the last answers may still be on their way back.)
    await vi.waitFor(() => expect(lite?.inFlight).toBe(0), { timeout: 20_000 });
    expect(await metricValue(registry, "app_mirror_dropped_total", { shadow: "spam-lite" })).toBe(0);
    expect(await metricValue(registry, "app_mirror_failed_total", { shadow: "spam-lite" })).toBe(0);
    expect(healthy.calls.map((call) => call.requestId).sort()).toEqual(
      primary.calls.map((call) => call.requestId).sort(),
    );

    // Woken up, the candidate answers what it held; its bound is free again.
    child.kill("SIGCONT");
    await vi.waitFor(() => expect(stopped?.inFlight).toBe(0), { timeout: 20_000 });
    expect(await metricValue(registry, "app_mirror_failed_total", { shadow: "stopped" })).toBe(0);
  });
});
