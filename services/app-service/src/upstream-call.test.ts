import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { createLogger, retryable } from "@shadowmesh/common";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createAppMetrics } from "./metrics.js";
import { metricValue } from "./testing/metric-value.js";
import { UpstreamCaller } from "./upstream-call.js";

/**
 * The retry rule of every upstream call, decided by the contract: UNAVAILABLE is retried once, with jitter, inside
 * the deadline, and only for a method whose declared idempotency_level is NO_SIDE_EFFECTS or IDEMPOTENT. The
 * upstream is in memory (connect's router transport), failing the first attempt.
 */

function setup(options: { jitterMs?: number; random?: () => number } = {}) {
  let attempts = 0;
  const transport = createRouterTransport((router) => {
    router.service(PredictService, {
      predict: () => {
        attempts++;
        if (attempts === 1) {
          throw new ConnectError("overloaded", Code.Unavailable);
        }
        return { prediction: { label: "ham" } };
      },
    });
    router.service(MetricsService, {
      submitFeedback: () => {
        attempts++;
        if (attempts === 1) {
          throw new ConnectError("overloaded", Code.Unavailable);
        }
        return { requestKnown: true };
      },
    });
  });
  const registry = new Registry();
  const caller = new UpstreamCaller({
    upstream: "model-service",
    metrics: createAppMetrics(registry),
    logger: createLogger("test", "silent"),
    retryJitterMs: options.jitterMs ?? 5,
    ...(options.random ? { random: options.random } : {}),
  });
  return {
    predict: createClient(PredictService, transport),
    metrics: createClient(MetricsService, transport),
    caller,
    registry,
    attempts: () => attempts,
  };
}

const ids = { requestId: "r-1" };
const signal = new AbortController().signal;

describe("retries decided by the contract", () => {
  it("reads the declared levels: Predict NO_SIDE_EFFECTS, SubmitFeedback IDEMPOTENT, none unknown", () => {
    expect(PredictService.method.predict.idempotency).toBe(MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS);
    expect(MetricsService.method.submitFeedback.idempotency).toBe(MethodOptions_IdempotencyLevel.IDEMPOTENT);
    expect(retryable(PredictService.method.predict)).toBe(true);
    expect(retryable(MetricsService.method.submitFeedback)).toBe(true);
    expect(
      retryable({
        ...PredictService.method.predict,
        idempotency: MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN,
      }),
    ).toBe(false);
  });

  it("retries a NO_SIDE_EFFECTS method once after UNAVAILABLE", async () => {
    const { predict, caller, registry, attempts } = setup();
    const response = await caller.unary(
      PredictService.method.predict,
      (options) => predict.predict({ text: "hi" }, options),
      ids,
      Date.now() + 2000,
      signal,
    );
    expect(response.prediction?.label).toBe("ham");
    expect(attempts()).toBe(2);
    expect(await metricValue(registry, "app_upstream_retries_total", { method: "Predict" })).toBe(1);
  });

  it("retries an IDEMPOTENT method once after UNAVAILABLE", async () => {
    const { metrics, caller, attempts } = setup();
    const response = await caller.unary(
      MetricsService.method.submitFeedback,
      (options) => metrics.submitFeedback({ requestId: "r-0", label: "spam" }, options),
      ids,
      Date.now() + 2000,
      signal,
    );
    expect(response.requestKnown).toBe(true);
    expect(attempts()).toBe(2);
  });

  it("never retries a method that declares no idempotency level", async () => {
    const { predict, caller, registry, attempts } = setup();
    // A test-only descriptor: the same method as declared without an idempotency level.
    const undeclared = {
      ...PredictService.method.predict,
      idempotency: MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN,
    };
    await expect(
      caller.unary(
        undeclared,
        (options) => predict.predict({ text: "hi" }, options),
        ids,
        Date.now() + 2000,
        signal,
      ),
    ).rejects.toMatchObject({ code: Code.Unavailable });
    expect(attempts()).toBe(1);
    expect(await metricValue(registry, "app_upstream_retries_total")).toBe(0);
  });

  it("does not retry when the jitter pause would not fit in what is left of the deadline", async () => {
    // The pause is the whole jitter (random 1 → 1000 ms), the deadline 200 ms away.
    const { predict, caller, attempts } = setup({ jitterMs: 1000, random: () => 0.999 });
    await expect(
      caller.unary(
        PredictService.method.predict,
        (options) => predict.predict({ text: "hi" }, options),
        ids,
        Date.now() + 200,
        signal,
      ),
    ).rejects.toMatchObject({ code: Code.Unavailable });
    expect(attempts()).toBe(1);
  });

  it("gives the retry what is left of the same deadline, not a fresh one", async () => {
    const seen: (number | undefined)[] = [];
    const transport = createRouterTransport((router) =>
      router.service(PredictService, {
        predict: (_request, context) => {
          seen.push(context.timeoutMs());
          if (seen.length === 1) {
            throw new ConnectError("overloaded", Code.Unavailable);
          }
          return {};
        },
      }),
    );
    const client = createClient(PredictService, transport);
    const caller = new UpstreamCaller({
      upstream: "model-service",
      metrics: createAppMetrics(new Registry()),
      logger: createLogger("test", "silent"),
      retryJitterMs: 300,
      random: () => 1,
    });
    await caller.unary(
      PredictService.method.predict,
      (options) => client.predict({ text: "hi" }, options),
      ids,
      Date.now() + 1000,
      signal,
    );
    expect(seen).toHaveLength(2);
    // The retry waited 300 ms: it has at most 1000 - 300 ms left.
    expect(seen[1]).toBeLessThanOrEqual(700);
    expect(seen[1]).toBeGreaterThan(0);
  });
});
