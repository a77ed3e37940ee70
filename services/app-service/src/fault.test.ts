import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ConfigError } from "@shadowmesh/common";
import {
  type PredictionRecord,
  RecordSource,
  Role,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { readConfig } from "./config.js";
import { decideFault, readFaults } from "./fault.js";
import { FakeNetwork, fakeMetricsService, fakeModelService } from "./testing/fakes.js";
import { type RunningApp, startApp } from "./testing/harness.js";
import { metricValue, WAIT } from "./testing/metric-value.js";

/**
 * Fault injection on the shadow route (Istio's VirtualService `fault`, locally): a delay for a share of mirrored
 * calls, an abort with a gRPC status for a share. The shadow and metrics-service are fakes in memory.
 */

let running: RunningApp | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function mesh(env: Record<string, string>) {
  const records: PredictionRecord[] = [];
  const network = new FakeNetwork();
  const metrics = fakeMetricsService({
    reportPredictions: (request) => {
      records.push(...request.records);
      return { acceptedCount: request.records.length, duplicateCount: 0 };
    },
  });
  const primary = fakeModelService("spam-v1");
  const shadow = fakeModelService("spam-v2");
  running = await startApp(
    {
      MODEL_SERVICE_ADDRESS: network.add(primary, "primary"),
      SHADOW_ADDRESS: network.add(shadow, "shadow"),
      METRICS_SERVICE_ADDRESS: network.add(metrics, "metrics"),
      ...env,
    },
    network,
  );
  const client = createClient(
    PredictService,
    createConnectTransport({ baseUrl: running.baseUrl, httpVersion: "1.1" }),
  );
  return { client, records, shadow, primary, registry: running.registry };
}

const base = {
  SHADOW_FAULT_DELAY_MS: 0,
  SHADOW_FAULT_DELAY_PERCENT: 0,
  SHADOW_FAULT_ABORT_CODE: "",
  SHADOW_FAULT_ABORT_PERCENT: 0,
};

describe("shadow fault settings", () => {
  it("take gRPC status names as Istio spells them, or their numbers", () => {
    expect(readFaults("X_", { ...base, SHADOW_FAULT_ABORT_CODE: "unavailable" }).abortCode).toBe(
      Code.Unavailable,
    );
    expect(readFaults("X_", { ...base, SHADOW_FAULT_ABORT_CODE: "4" }).abortCode).toBe(Code.DeadlineExceeded);
    expect(readFaults("X_", base).abortCode).toBeUndefined();
  });

  it("refuse what Istio would refuse, and an abort share without a status", () => {
    const bad = [
      { SHADOW_FAULT_ABORT_CODE: "OK" },
      { SHADOW_FAULT_ABORT_CODE: "0" },
      { SHADOW_FAULT_ABORT_CODE: "17" },
      { SHADOW_FAULT_ABORT_CODE: "TEAPOT" },
      { SHADOW_FAULT_ABORT_PERCENT: 100 },
      { SHADOW_FAULT_DELAY_PERCENT: 101 },
      { SHADOW_FAULT_DELAY_PERCENT: -1 },
      { SHADOW_FAULT_DELAY_MS: -5 },
      { SHADOW_FAULT_DELAY_MS: 1.5 },
    ];
    for (const change of bad) {
      expect(() => readFaults("APP_SERVICE_", { ...base, ...change }), JSON.stringify(change)).toThrow(
        ConfigError,
      );
    }
    // Faults need local mirroring: in a cluster, Istio's VirtualService says them.
    expect(() =>
      readConfig({
        APP_SERVICE_SHADOW_FAULT_ABORT_CODE: "UNAVAILABLE",
        APP_SERVICE_SHADOW_FAULT_ABORT_PERCENT: "5",
      }),
    ).toThrow(/SHADOW_ADDRESS is empty/);
  });

  it("draw the delay and the abort independently, each with its percentage", () => {
    const faults = readFaults("X_", {
      SHADOW_FAULT_DELAY_MS: 50,
      SHADOW_FAULT_DELAY_PERCENT: 30,
      SHADOW_FAULT_ABORT_CODE: "UNAVAILABLE",
      SHADOW_FAULT_ABORT_PERCENT: 10,
    });
    // A seeded sequence: the shares must come out near 30 % and 10 %.
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let delayed = 0;
    let aborted = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const decision = decideFault(faults, random);
      delayed += decision.delayMs > 0 ? 1 : 0;
      aborted += decision.abort === undefined ? 0 : 1;
    }
    expect(delayed / n).toBeGreaterThan(0.28);
    expect(delayed / n).toBeLessThan(0.32);
    expect(aborted / n).toBeGreaterThan(0.085);
    expect(aborted / n).toBeLessThan(0.115);
    expect(decideFault({ ...faults, delayPercent: 100, abortPercent: 100 }, () => 0.999_999)).toEqual({
      delayMs: 50,
      abort: Code.Unavailable,
    });
    expect(decideFault({ ...faults, delayPercent: 0, abortPercent: 0 }, () => 0)).toEqual({
      delayMs: 0,
      abort: undefined,
    });
  });
});

describe("faults injected on the shadow route", () => {
  it("abort: the shadow never sees the call, the user gets the primary's answer, the comparison gets the code", async () => {
    const { client, records, shadow, registry } = await mesh({
      SHADOW_FAULT_ABORT_CODE: "RESOURCE_EXHAUSTED",
      SHADOW_FAULT_ABORT_PERCENT: "100",
    });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await client.predict({ text: `message ${i}` });
      expect(response.prediction?.modelName).toBe("spam-v1");
      ids.push(response.prediction?.requestId ?? "");
    }
    await vi.waitUntil(() => records.length === 5, WAIT);
    expect(shadow.calls).toHaveLength(0);
    expect(records.map((record) => record.requestId).sort()).toEqual([...ids].sort());
    for (const record of records) {
      expect(record).toMatchObject({
        role: Role.SHADOW,
        source: RecordSource.MIRROR,
        grpcStatusCode: Code.ResourceExhausted,
      });
    }
    expect(await metricValue(registry, "app_shadow_faults_injected_total", { kind: "abort" })).toBe(5);
    expect(await metricValue(registry, "app_mirror_failed_total", { code: "ResourceExhausted" })).toBe(5);
  });

  it("delay: the shadow gets the call late, the user does not wait for it; a delay past the deadline is DEADLINE_EXCEEDED", async () => {
    const { client, records, shadow, registry } = await mesh({
      SHADOW_FAULT_DELAY_MS: "400",
      SHADOW_FAULT_DELAY_PERCENT: "100",
      DEADLINE_MS: "1000",
    });
    const response = await client.predict({ text: "hello" });
    expect(response.prediction?.modelName).toBe("spam-v1");
    // The user's answer came before the shadow was even called.
    expect(shadow.calls).toHaveLength(0);
    await vi.waitUntil(() => shadow.calls.length === 1, WAIT);
    expect(await metricValue(registry, "app_shadow_faults_injected_total", { kind: "delay" })).toBe(1);
    expect(records).toHaveLength(0);
    await running?.close();
    running = undefined;

    // Delayed past the call's deadline: the mirror ends as the deadline says, and is reported so.
    const late = await mesh({
      SHADOW_FAULT_DELAY_MS: "600",
      SHADOW_FAULT_DELAY_PERCENT: "100",
      DEADLINE_MS: "300",
    });
    const lateResponse = await late.client.predict({ text: "hello" });
    expect(lateResponse.prediction?.modelName).toBe("spam-v1");
    await vi.waitUntil(() => late.records.length === 1, WAIT);
    expect(late.records[0]).toMatchObject({
      requestId: lateResponse.prediction?.requestId,
      source: RecordSource.MIRROR,
      grpcStatusCode: Code.DeadlineExceeded,
    });
    expect(late.shadow.calls).toHaveLength(0);
  });
});
