import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  deadAddress,
  type FakeServer,
  hang,
  type PredictImpl,
  startFakeModelService,
} from "./testing/fakes.js";
import { type RunningApp, startApp } from "./testing/harness.js";
import { metricValue } from "./testing/metric-value.js";

/**
 * Forwarding to the primary model-service over real gRPC (grpc-js fakes on port 0), through a real app-service
 * HTTP server, with real Connect and gRPC-web clients.
 */

let primary: FakeServer;
let overrides: PredictImpl;
let running: RunningApp | undefined;

beforeEach(async () => {
  overrides = {};
  primary = await startFakeModelService("spam-v1", () => overrides);
});

afterEach(async () => {
  await running?.close();
  running = undefined;
  await primary.close();
});

async function start(env: Record<string, string> = {}) {
  running = await startApp({ MODEL_SERVICE_ADDRESS: primary.address, ...env });
  return running;
}

function clients(baseUrl: string) {
  return {
    json: createClient(PredictService, createConnectTransport({ baseUrl, httpVersion: "1.1" })),
    binary: createClient(
      PredictService,
      createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }),
    ),
    grpcWeb: createClient(PredictService, createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })),
  };
}

async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail");
}

describe("forwarding Predict to model-service", () => {
  it("answers Connect JSON, Connect binary and gRPC-web with the primary's prediction", async () => {
    const { baseUrl } = await start();
    const { json, binary, grpcWeb } = clients(baseUrl);
    for (const client of [json, binary, grpcWeb]) {
      const spam = await client.predict({ text: "WIN a FREE prize now" });
      expect(spam.prediction?.label).toBe("spam");
      expect(spam.prediction?.modelName).toBe("spam-v1");
      const ham = await client.predict({ text: "Meeting moved to 3pm, see you there" });
      expect(ham.prediction?.label).toBe("ham");
    }
    expect(primary.calls.filter((call) => call.method === "Predict")).toHaveLength(6);
  });

  it("propagates the caller's x-request-id to model-service and returns it in the header and the body", async () => {
    const { baseUrl } = await start();
    let responseId: string | null = null;
    const response = await clients(baseUrl).json.predict(
      { text: "hello" },
      {
        headers: { "x-request-id": "req-abc-123" },
        onHeader: (header) => (responseId = header.get("x-request-id")),
      },
    );
    expect(primary.calls[0]?.requestId).toBe("req-abc-123");
    expect(responseId).toBe("req-abc-123");
    expect(response.prediction?.requestId).toBe("req-abc-123");
  });

  it("creates a request id when the caller sends none (or a malformed one) and uses it everywhere", async () => {
    const { baseUrl } = await start();
    for (const headers of [{}, { "x-request-id": "bad id with spaces" }]) {
      let responseId: string | null = null;
      const response = await clients(baseUrl).binary.predict(
        { text: "hello" },
        { headers, onHeader: (header) => (responseId = header.get("x-request-id")) },
      );
      const sent = primary.calls.at(-1)?.requestId;
      expect(sent).toMatch(/^[0-9a-f-]{36}$/);
      expect(responseId).toBe(sent);
      expect(response.prediction?.requestId).toBe(sent);
    }
  });

  it("fills in the request id in the body when model-service left it empty", async () => {
    overrides = {
      predict: (request) => ({ prediction: { label: request.text.length > 3 ? "ham" : "spam" } }),
    };
    const { baseUrl } = await start();
    const response = await clients(baseUrl).json.predict(
      { text: "hello" },
      { headers: { "x-request-id": "r-1" } },
    );
    expect(response.prediction?.requestId).toBe("r-1");
  });

  it("forwards PredictBatch and GetModel", async () => {
    const { baseUrl } = await start();
    const { json } = clients(baseUrl);
    const batch = await json.predictBatch({ texts: ["free cash", "lunch?", "you WIN"] });
    expect(batch.predictions.map((p) => p.label)).toEqual(["spam", "ham", "spam"]);
    const model = await json.getModel({});
    expect(model.model?.labels).toEqual(["ham", "spam"]);
  });

  it("sends model-service a deadline no later than the configured one, or the client's when that is shorter", async () => {
    const { baseUrl } = await start({ DEADLINE_MS: "1500" });
    const { json } = clients(baseUrl);
    await json.predict({ text: "a" });
    await json.predict({ text: "b" }, { timeoutMs: 400 });
    const [first, second] = primary.calls;
    expect(first?.timeoutMs).toBeGreaterThan(0);
    expect(first?.timeoutMs).toBeLessThanOrEqual(1500);
    expect(second?.timeoutMs).toBeGreaterThan(0);
    expect(second?.timeoutMs).toBeLessThanOrEqual(400);
  });
});

describe("upstream failures", () => {
  it("passes INVALID_ARGUMENT through with model-service's message", async () => {
    overrides = {
      predict: () => {
        throw new ConnectError(
          "text is longer than the model's limit of 20000 characters",
          Code.InvalidArgument,
        );
      },
    };
    const { baseUrl } = await start();
    const error = await failure(clients(baseUrl).json.predict({ text: "x" }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("text is longer than the model's limit of 20000 characters");
  });

  it("answers DEADLINE_EXCEEDED when model-service does not answer within the deadline", async () => {
    overrides = { predict: (_request, context) => hang(context) };
    const { baseUrl, registry } = await start({ DEADLINE_MS: "300" });
    const error = await failure(clients(baseUrl).json.predict({ text: "x" }));
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(error.rawMessage).toBe("model-service did not answer in time");
    expect(
      await metricValue(registry, "app_requests_total", { method: "Predict", code: "DeadlineExceeded" }),
    ).toBe(1);
  });

  it("retries UNAVAILABLE once and succeeds when the second attempt does", async () => {
    let attempts = 0;
    overrides = {
      predict: () => {
        attempts++;
        if (attempts === 1) {
          throw new ConnectError("overloaded", Code.Unavailable);
        }
        return { prediction: { label: "ham", modelName: "spam-v1" } };
      },
    };
    const { baseUrl, registry } = await start();
    const response = await clients(baseUrl).json.predict(
      { text: "hi" },
      { headers: { "x-request-id": "retry-1" } },
    );
    expect(response.prediction?.label).toBe("ham");
    expect(attempts).toBe(2);
    // Both attempts carry the same request id: the retry is the same request.
    expect(primary.calls.map((call) => call.requestId)).toEqual(["retry-1", "retry-1"]);
    expect(await metricValue(registry, "app_upstream_retries_total", { method: "Predict" })).toBe(1);
  });

  it("retries UNAVAILABLE only once, then answers UNAVAILABLE in plain words", async () => {
    overrides = {
      predict: () => {
        throw new ConnectError("subchannel 10.1.2.3:50051 is TRANSIENT_FAILURE", Code.Unavailable);
      },
    };
    const { baseUrl } = await start();
    const error = await failure(clients(baseUrl).json.predict({ text: "hi" }));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe("model-service is unavailable; try again shortly");
    expect(primary.calls).toHaveLength(2);
  });

  it("does not leak internal addresses when model-service is down", async () => {
    const { baseUrl } = await start({ MODEL_SERVICE_ADDRESS: await deadAddress() });
    for (const client of Object.values(clients(baseUrl))) {
      const error = await failure(client.predict({ text: "hi" }));
      expect(error.code).toBe(Code.Unavailable);
      expect(error.message).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|\d+:\d+/);
    }
  });

  it("turns unexpected upstream errors into a generic INTERNAL without their details", async () => {
    overrides = {
      predict: () => {
        throw new ConnectError("onnxruntime: at Session.run (/srv/model.onnx) secret stack", Code.Internal);
      },
    };
    const { baseUrl } = await start();
    const error = await failure(clients(baseUrl).grpcWeb.predict({ text: "hi" }));
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("model-service failed to answer");
  });

  it("returns the request id with errors too", async () => {
    overrides = {
      predict: () => {
        throw new ConnectError("text must not be empty", Code.InvalidArgument);
      },
    };
    const { baseUrl } = await start();
    const error = await failure(
      clients(baseUrl).json.predict({ text: " " }, { headers: { "x-request-id": "err-7" } }),
    );
    expect(error.metadata.get("x-request-id")).toBe("err-7");
  });
});
