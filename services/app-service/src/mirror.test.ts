import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { deadAddress, FakeNetwork, fakeModelService, hang, type PredictImpl } from "./testing/fakes.js";
import { type RunningApp, startApp } from "./testing/harness.js";
import { metricValue, WAIT } from "./testing/metric-value.js";

/**
 * Local mirroring: app-service copies Predict calls to a (fake, in-memory) shadow model-service, fire and forget; a
 * dead shadow is a real port nobody listens on.
 */

let running: RunningApp | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function mesh(options: { env?: Record<string, string>; shadow?: () => PredictImpl } = {}) {
  const network = new FakeNetwork();
  const primary = fakeModelService("spam-v1");
  const shadow = fakeModelService("spam-v2", options.shadow);
  running = await startApp(
    {
      MODEL_SERVICE_ADDRESS: network.add(primary, "primary"),
      SHADOW_ADDRESS: network.add(shadow, "shadow"),
      ...options.env,
    },
    network,
  );
  const client = createClient(
    PredictService,
    createConnectTransport({ baseUrl: running.baseUrl, httpVersion: "1.1" }),
  );
  return { primary, shadow, client, registry: running.registry, app: running.app };
}

describe("local mirroring", () => {
  it("sends the same Predict with the same request id and deadline to the shadow", async () => {
    const { primary, shadow, client } = await mesh({ env: { DEADLINE_MS: "1500" } });
    const response = await client.predict({ text: "free cash" }, { headers: { "x-request-id": "mirror-1" } });
    // The user gets the primary's answer, never the shadow's.
    expect(response.prediction?.modelName).toBe("spam-v1");
    await vi.waitUntil(() => shadow.calls.length === 1, WAIT);
    const [primaryCall] = primary.calls;
    const [shadowCall] = shadow.calls;
    expect(shadowCall?.method).toBe("Predict");
    expect(shadowCall?.request).toMatchObject({ text: "free cash" });
    // The same join key (app-service's, returned to the user) and the same caller id go to both.
    expect(shadowCall?.requestId).toBe(response.prediction?.requestId);
    expect(primaryCall?.requestId).toBe(response.prediction?.requestId);
    expect(shadowCall?.clientRequestId).toBe("mirror-1");
    expect(primaryCall?.clientRequestId).toBe("mirror-1");
    expect(shadowCall?.timeoutMs).toBeGreaterThan(0);
    expect(shadowCall?.timeoutMs).toBeLessThanOrEqual(1500);
  });

  it("mirrors PredictBatch but not GetModel", async () => {
    const { shadow, client, registry } = await mesh();
    const batch = await client.predictBatch(
      { texts: ["a", "b"] },
      { headers: { "x-request-id": "batch-1" } },
    );
    await client.getModel({});
    await vi.waitUntil(() => shadow.calls.length === 1, WAIT);
    expect(shadow.calls[0]).toMatchObject({
      method: "PredictBatch",
      requestId: batch.predictions[0]?.requestId,
      clientRequestId: "batch-1",
    });
    expect(await metricValue(registry, "app_mirror_sent_total")).toBe(1);
  });

  it("mirrors a generated request id identical to the primary's", async () => {
    const { primary, shadow, client } = await mesh();
    await client.predict({ text: "hello" });
    await vi.waitUntil(() => shadow.calls.length === 1, WAIT);
    expect(shadow.calls[0]?.requestId).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(shadow.calls[0]?.requestId).toBe(primary.calls[0]?.requestId);
  });

  it("answers the user while the shadow is still working, and never fails because of it", async () => {
    const { shadow, client, registry, app } = await mesh({
      env: { DEADLINE_MS: "20000" },
      shadow: () => ({ predict: (_request, context) => hang(context) }),
    });
    const response = await client.predict({ text: "hello" });
    expect(response.prediction?.label).toBe("ham");
    // The shadow holds the call until its 20 s deadline: the user's answer did not wait for it.
    expect(app.mirrors[0]?.inFlight).toBe(1);
    await vi.waitUntil(() => shadow.calls.length === 1, WAIT);
    expect(await metricValue(registry, "app_mirror_in_flight")).toBe(1);
  });

  it("counts failed mirrors and keeps answering users when the shadow errors", async () => {
    const { client, registry } = await mesh({
      shadow: () => ({
        predict: () => {
          throw new ConnectError("shadow broke", Code.Internal);
        },
      }),
    });
    for (let i = 0; i < 3; i++) {
      expect((await client.predict({ text: `message ${i}` })).prediction?.label).toBe("ham");
    }
    await vi.waitUntil(
      async () => (await metricValue(registry, "app_mirror_failed_total", { code: "Internal" })) === 3,
      WAIT,
    );
    expect(await metricValue(registry, "app_requests_total", { method: "Predict", code: "OK" })).toBe(3);
  });

  it("keeps answering users when the shadow is down", async () => {
    const network = new FakeNetwork();
    running = await startApp(
      {
        MODEL_SERVICE_ADDRESS: network.add(fakeModelService("spam-v1")),
        SHADOW_ADDRESS: await deadAddress(),
      },
      network,
    );
    const client = createClient(
      PredictService,
      createConnectTransport({ baseUrl: running.baseUrl, httpVersion: "1.1" }),
    );
    for (let i = 0; i < 3; i++) {
      expect((await client.predict({ text: "free prize" })).prediction?.label).toBe("spam");
    }
    const registry = running.registry;
    await vi.waitUntil(
      async () => (await metricValue(registry, "app_mirror_failed_total", { code: "Unavailable" })) === 3,
      WAIT,
    );
  });

  it("drops and counts mirrors beyond the in-flight limit", async () => {
    const { shadow, client, registry } = await mesh({
      env: { MAX_MIRRORS_IN_FLIGHT: "2", DEADLINE_MS: "5000" },
      shadow: () => ({ predict: (_request, context) => hang(context) }),
    });
    for (let i = 0; i < 5; i++) {
      await client.predict({ text: `message ${i}` });
    }
    expect(await metricValue(registry, "app_mirror_sent_total")).toBe(2);
    expect(await metricValue(registry, "app_mirror_dropped_total", { reason: "in_flight_limit" })).toBe(3);
    await vi.waitUntil(() => shadow.calls.length === 2, WAIT);
  });

  it("mirrors nothing at 0 %", async () => {
    const { shadow, client, registry } = await mesh({ env: { MIRROR_PERCENT: "0" } });
    for (let i = 0; i < 5; i++) {
      await client.predict({ text: "hello" });
    }
    expect(await metricValue(registry, "app_mirror_sampled_out_total")).toBe(5);
    expect(await metricValue(registry, "app_mirror_sent_total")).toBe(0);
    expect(shadow.calls).toHaveLength(0);
  });

  it("mirrors a share of calls near the configured percentage", async () => {
    const { shadow, client, registry } = await mesh({ env: { MIRROR_PERCENT: "50" } });
    const total = 200;
    for (let i = 0; i < total; i++) {
      await client.predict({ text: "hello" });
    }
    const sent = await metricValue(registry, "app_mirror_sent_total");
    expect(sent + (await metricValue(registry, "app_mirror_sampled_out_total"))).toBe(total);
    // Binomial(200, 0.5): outside 60..140 has a probability below 1e-8.
    expect(sent).toBeGreaterThan(60);
    expect(sent).toBeLessThan(140);
    await vi.waitUntil(() => shadow.calls.length === sent, WAIT);
  });

  it("mirrors nothing without a shadow address (cluster mode: Istio mirrors)", async () => {
    const network = new FakeNetwork();
    running = await startApp({ MODEL_SERVICE_ADDRESS: network.add(fakeModelService("spam-v1")) }, network);
    const client = createClient(
      PredictService,
      createConnectTransport({ baseUrl: running.baseUrl, httpVersion: "1.1" }),
    );
    await client.predict({ text: "hello" });
    expect(running.app.mirrors).toHaveLength(0);
    expect(await metricValue(running.registry, "app_mirror_sent_total")).toBe(0);
  });
});
