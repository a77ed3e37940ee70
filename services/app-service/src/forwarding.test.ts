import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { verifyFeedbackToken } from "@shadowmesh/common";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import {
  PredictRequestSchema,
  PredictService,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  deadAddress,
  type FakeModelService,
  FakeNetwork,
  fakeModelService,
  hang,
  type PredictImpl,
  serveFake,
  startStandInProcess,
} from "./testing/fakes.js";
import { type RunningApp, startApp } from "./testing/harness.js";
import { metricValue } from "./testing/metric-value.js";

/**
 * Forwarding to the primary model-service through a real app-service HTTP server, with real Connect and gRPC-web
 * clients. The fake model-service is in memory (connect's router transport) except in "over a real socket", where
 * the wire is the point: deadlines in grpc-timeout, a dead port, a restarted upstream.
 */

/** A version-7 (time-ordered) UUID: the join keys app-service makes. */
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SECRET = "feedback-secret-for-tests-0123456789";

let network: FakeNetwork;
let primary: FakeModelService;
let primaryAddress: string;
let overrides: PredictImpl;
let running: RunningApp | undefined;
const cleanups: (() => Promise<void>)[] = [];

beforeEach(() => {
  overrides = {};
  network = new FakeNetwork();
  primary = fakeModelService("spam-v1", () => overrides);
  primaryAddress = network.add(primary, "primary");
});

afterEach(async () => {
  await running?.close();
  running = undefined;
  for (const cleanup of cleanups.splice(0)) {
    await cleanup();
  }
});

async function start(env: Record<string, string> = {}) {
  running = await startApp({ MODEL_SERVICE_ADDRESS: primaryAddress, ...env }, network);
  return running;
}

/** The primary on a real grpc-js server on port 0 (closed after the test). */
async function primaryOnSocket(port = 0) {
  const server = await serveFake(primary, port);
  cleanups.push(() => server.close());
  primaryAddress = server.address;
  return server;
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

  it("makes a fresh UUIDv7 join key per call and keeps the caller's x-request-id as client_request_id", async () => {
    const { baseUrl } = await start();
    const headers: Record<string, string | null> = {};
    const response = await clients(baseUrl).json.predict(
      { text: "hello" },
      {
        headers: { "x-request-id": "req-abc-123" },
        onHeader: (header) => {
          headers.requestId = header.get("x-request-id");
          headers.clientRequestId = header.get("x-client-request-id");
        },
      },
    );
    const joinKey = primary.calls[0]?.requestId;
    expect(joinKey).toMatch(UUID_V7);
    expect(primary.calls[0]?.clientRequestId).toBe("req-abc-123");
    expect(headers).toEqual({ requestId: joinKey, clientRequestId: "req-abc-123" });
    expect(response.prediction?.requestId).toBe(joinKey);
    expect(response.prediction?.clientRequestId).toBe("req-abc-123");
  });

  it("gives a caller who reuses one x-request-id for two different texts two different join keys", async () => {
    const { baseUrl } = await start();
    const { json } = clients(baseUrl);
    const first = await json.predict({ text: "WIN a FREE prize" }, { headers: { "x-request-id": "same" } });
    const second = await json.predict({ text: "lunch at noon?" }, { headers: { "x-request-id": "same" } });
    expect(first.prediction?.requestId).toMatch(UUID_V7);
    expect(second.prediction?.requestId).toMatch(UUID_V7);
    expect(first.prediction?.requestId).not.toBe(second.prediction?.requestId);
    expect(primary.calls.map((call) => call.requestId)).toEqual([
      first.prediction?.requestId,
      second.prediction?.requestId,
    ]);
    expect(primary.calls.map((call) => call.clientRequestId)).toEqual(["same", "same"]);
  });

  it("makes a join key when the caller sends no id, and ignores an x-client-request-id it sends", async () => {
    const { baseUrl } = await start();
    let responseId: string | null = null;
    const response = await clients(baseUrl).binary.predict(
      { text: "hello" },
      {
        headers: { "x-client-request-id": "forged" },
        onHeader: (header) => (responseId = header.get("x-request-id")),
      },
    );
    const sent = primary.calls.at(-1);
    expect(sent?.requestId).toMatch(UUID_V7);
    expect(sent?.clientRequestId).toBeNull();
    expect(responseId).toBe(sent?.requestId);
    expect(response.prediction?.requestId).toBe(sent?.requestId);
    expect(response.prediction?.clientRequestId).toBe("");
  });

  it("refuses a caller x-request-id that is not 1-128 printable ASCII characters, and says why", async () => {
    const { baseUrl } = await start();
    const { json, grpcWeb } = clients(baseUrl);
    for (const [id, why] of [
      ["bad id with spaces", /not printable ASCII/],
      ["x".repeat(129), /129 characters long; at most 128/],
    ] as const) {
      for (const client of [json, grpcWeb]) {
        const error = await failure(client.predict({ text: "hello" }, { headers: { "x-request-id": id } }));
        expect(error.code).toBe(Code.InvalidArgument);
        expect(error.rawMessage).toMatch(why);
        expect(error.metadata.get("x-request-id")).toMatch(UUID_V7);
      }
    }
    expect(primary.calls).toHaveLength(0);
    // 128 printable characters are fine.
    const ok = await json.predict({ text: "hello" }, { headers: { "x-request-id": "~".repeat(128) } });
    expect(ok.prediction?.clientRequestId).toBe("~".repeat(128));
  });

  it("sets the join key in the body whatever model-service put there", async () => {
    overrides = {
      predict: (request) => ({
        prediction: { label: request.text.length > 3 ? "ham" : "spam", requestId: "model-said-this" },
      }),
    };
    const { baseUrl } = await start();
    const response = await clients(baseUrl).json.predict(
      { text: "hello" },
      { headers: { "x-request-id": "r-1" } },
    );
    expect(response.prediction?.requestId).toBe(primary.calls[0]?.requestId);
    expect(response.prediction?.requestId).toMatch(UUID_V7);
  });

  it("puts a feedback token for its request id and batch index on every prediction when a secret is set", async () => {
    const { baseUrl } = await start({ FEEDBACK_SECRET: SECRET });
    const { json } = clients(baseUrl);
    const single = await json.predict({ text: "hello" });
    const { requestId, feedbackToken: token } = single.prediction ?? { requestId: "", feedbackToken: "" };
    expect(verifyFeedbackToken(SECRET, requestId, 0, token)).toBe(true);
    const batch = await json.predictBatch({ texts: ["free cash", "lunch?", "you WIN"] });
    expect(new Set(batch.predictions.map((p) => p.requestId)).size).toBe(1);
    for (const [index, prediction] of batch.predictions.entries()) {
      expect(verifyFeedbackToken(SECRET, prediction.requestId, index, prediction.feedbackToken)).toBe(true);
      expect(verifyFeedbackToken(SECRET, prediction.requestId, index + 1, prediction.feedbackToken)).toBe(
        false,
      );
    }
  });

  it("hands out no feedback token without a secret", async () => {
    const { baseUrl } = await start();
    const response = await clients(baseUrl).json.predict({ text: "hello" });
    expect(response.prediction?.feedbackToken).toBe("");
  });

  it("forwards PredictBatch and GetModel", async () => {
    const { baseUrl } = await start();
    const { json } = clients(baseUrl);
    const batch = await json.predictBatch({ texts: ["free cash", "lunch?", "you WIN"] });
    expect(batch.predictions.map((p) => p.label)).toEqual(["spam", "ham", "spam"]);
    const model = await json.getModel({});
    expect(model.model?.labels).toEqual(["ham", "spam"]);
  });

  it("sends model-service the deadline in memory too: the configured one, or the client's when shorter", async () => {
    const { baseUrl } = await start({ DEADLINE_MS: "1500" });
    const { json } = clients(baseUrl);
    await json.predict({ text: "a" });
    await json.predict({ text: "b" }, { timeoutMs: 400 });
    const [first, second] = primary.calls;
    expect(first?.timeoutMs).toBeGreaterThan(400);
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
    // Both attempts carry the same join key: the retry is the same request.
    const [first, second] = primary.calls;
    expect(first?.requestId).toMatch(UUID_V7);
    expect(second?.requestId).toBe(first?.requestId);
    expect(primary.calls.map((call) => call.clientRequestId)).toEqual(["retry-1", "retry-1"]);
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
    expect(error.metadata.get("x-request-id")).toBe(primary.calls[0]?.requestId);
    expect(error.metadata.get("x-client-request-id")).toBe("err-7");
  });

  it("answers connect-timeout-ms: 0 and grpc-timeout: 0m with DEADLINE_EXCEEDED, without calling model-service", async () => {
    const { baseUrl, registry } = await start();
    const connect = await fetch(`${baseUrl}/shadowmesh.predict.v1.PredictService/Predict`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-timeout-ms": "0" },
      body: JSON.stringify({ text: "hello" }),
    });
    expect(connect.status).toBe(504);
    expect(((await connect.json()) as { code: string }).code).toBe("deadline_exceeded");
    expect(connect.headers.get("x-request-id")).toMatch(UUID_V7);
    const grpcWeb = await fetch(`${baseUrl}/shadowmesh.predict.v1.PredictService/Predict`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "grpc-timeout": "0m", "x-grpc-web": "1" },
      body: envelope(toBinary(PredictRequestSchema, create(PredictRequestSchema, { text: "hello" }))),
    });
    expect(await trailerStatus(grpcWeb)).toBe(String(Code.DeadlineExceeded));
    expect(primary.calls).toHaveLength(0);
    expect(
      await metricValue(registry, "app_requests_total", { method: "Predict", code: "DeadlineExceeded" }),
    ).toBe(2);
  });
});

describe("over a real socket", () => {
  it("sends model-service a deadline no later than the configured one, or the client's when that is shorter", async () => {
    await primaryOnSocket();
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

  it("answers DEADLINE_EXCEEDED when model-service does not answer within the deadline", async () => {
    overrides = { predict: (_request, context) => hang(context) };
    await primaryOnSocket();
    const { baseUrl, registry } = await start({ DEADLINE_MS: "300" });
    const error = await failure(clients(baseUrl).json.predict({ text: "x" }));
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(error.rawMessage).toBe("model-service did not answer in time");
    expect(
      await metricValue(registry, "app_requests_total", { method: "Predict", code: "DeadlineExceeded" }),
    ).toBe(1);
  });

  it("does not leak internal addresses when model-service is down", async () => {
    const { baseUrl } = await start({ MODEL_SERVICE_ADDRESS: await deadAddress() });
    for (const client of Object.values(clients(baseUrl))) {
      const error = await failure(client.predict({ text: "hi" }));
      expect(error.code).toBe(Code.Unavailable);
      expect(error.message).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|\d+:\d+/);
    }
  });

  it("answers DEADLINE_EXCEEDED while the model-service process is stopped (SIGSTOP), and serves again once woken", async () => {
    const stand = await startStandInProcess();
    cleanups.push(() => stand.kill());
    primaryAddress = stand.address;
    const { baseUrl, app, registry } = await start({ DEADLINE_MS: "400", READY_CHECK_INTERVAL_MS: "100" });
    const { json } = clients(baseUrl);
    expect((await json.predict({ text: "before" })).prediction?.modelName).toBe("bench");
    expect(app.readiness.ready).toBe(true);
    stand.child.kill("SIGSTOP");
    // The connection is open and the kernel accepts the bytes; nobody answers: the deadline ends each call.
    for (const client of [json, clients(baseUrl).grpcWeb]) {
      const error = await failure(client.predict({ text: "while stopped" }));
      expect(error.code).toBe(Code.DeadlineExceeded);
      expect(error.rawMessage).toBe("model-service did not answer in time");
    }
    expect(
      await metricValue(registry, "app_upstream_calls_total", {
        method: "Predict",
        code: "DeadlineExceeded",
      }),
    ).toBe(2);
    // Not retried: DEADLINE_EXCEEDED is not UNAVAILABLE.
    expect(await metricValue(registry, "app_upstream_retries_total")).toBe(0);
    await vi.waitUntil(() => !app.readiness.ready, { timeout: 10_000, interval: 25 });
    stand.child.kill("SIGCONT");
    await vi.waitFor(
      async () => expect((await json.predict({ text: "after" })).prediction?.modelName).toBe("bench"),
      { timeout: 10_000, interval: 50 },
    );
    await vi.waitUntil(() => app.readiness.ready, { timeout: 10_000, interval: 25 });
  });

  it("reconnects to a model-service that went away and came back on the same port", async () => {
    const server = await primaryOnSocket();
    const { baseUrl } = await start();
    const { json } = clients(baseUrl);
    expect((await json.predict({ text: "before" })).prediction?.label).toBe("ham");
    await server.close();
    const error = await failure(json.predict({ text: "while down" }));
    expect(error.code).toBe(Code.Unavailable);
    const again = await serveFake(primary, server.port);
    cleanups.push(() => again.close());
    await vi.waitFor(
      async () => expect((await json.predict({ text: "after" })).prediction?.label).toBe("ham"),
      { timeout: 10_000, interval: 50 },
    );
    expect(primary.calls.filter((call) => (call.request as { text: string }).text === "after").length).toBe(
      1,
    );
  });
});

describe("requests app-service cannot serve", () => {
  const predictPath = "/shadowmesh.predict.v1.PredictService/Predict";

  it("answers malformed request messages with INVALID_ARGUMENT and the request id, in every protocol", async () => {
    const { baseUrl, registry } = await start();
    const garbage = new Uint8Array([0xff, 0xff, 0xff, 0x01]);
    for (const [type, body] of [
      ["application/proto", garbage],
      ["application/json", new TextEncoder().encode("{nope")],
      ["application/json", new TextEncoder().encode('{"text": 5}')],
    ] as const) {
      const response = await fetch(`${baseUrl}${predictPath}`, {
        method: "POST",
        headers: { "content-type": type },
        body,
      });
      expect(response.status).toBe(400);
      const error = (await response.json()) as { code: string; message: string };
      expect(error.code).toBe("invalid_argument");
      expect(error.message).toMatch(/not a valid shadowmesh\.predict\.v1\.PredictRequest/);
      expect(response.headers.get("x-request-id")).toMatch(UUID_V7);
    }
    const grpcWeb = await fetch(`${baseUrl}${predictPath}`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: envelope(garbage),
    });
    expect(grpcWeb.headers.get("x-request-id")).toMatch(UUID_V7);
    expect(await trailerStatus(grpcWeb)).toBe(String(Code.InvalidArgument));
    expect(primary.calls).toHaveLength(0);
    expect(
      await metricValue(registry, "app_requests_total", { method: "Predict", code: "InvalidArgument" }),
    ).toBe(4);
  });

  it("answers unknown RPC paths with UNIMPLEMENTED over Connect and gRPC-web", async () => {
    const { baseUrl } = await start();
    const connect = await fetch(`${baseUrl}/shadowmesh.predict.v1.PredictService/Explain`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(((await connect.json()) as { code: string }).code).toBe("unimplemented");
    // Through real clients: a method that exists in the contracts but is not routed here.
    const reporting = createClient(
      MetricsService,
      createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }),
    );
    const viaConnect = await failure(reporting.reportPredictions({ records: [] }));
    expect(viaConnect.code).toBe(Code.Unimplemented);
    const viaGrpcWeb = await failure(
      createClient(MetricsService, createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })).reportPredictions(
        {
          records: [],
        },
      ),
    );
    expect(viaGrpcWeb.code).toBe(Code.Unimplemented);
    expect(viaGrpcWeb.metadata.get("x-request-id")).toMatch(UUID_V7);
  });
});

/** A gRPC-web / Connect streaming envelope around one message. */
function envelope(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.byteLength);
  new DataView(out.buffer).setUint32(1, message.byteLength);
  out.set(message, 5);
  return out;
}

/** The grpc-status of a gRPC-web response: in the headers (trailers-only) or in the trailer frame of the body. */
async function trailerStatus(response: Response): Promise<string | undefined> {
  const inHeader = response.headers.get("grpc-status");
  if (inHeader !== null) {
    return inHeader;
  }
  const body = new Uint8Array(await response.arrayBuffer());
  let offset = 0;
  while (offset + 5 <= body.byteLength) {
    const flags = body[offset] ?? 0;
    const length = new DataView(body.buffer, body.byteOffset + offset + 1, 4).getUint32(0);
    const frame = body.subarray(offset + 5, offset + 5 + length);
    if ((flags & 0x80) !== 0) {
      return /grpc-status:\s*(\d+)/i.exec(new TextDecoder().decode(frame))?.[1];
    }
    offset += 5 + length;
  }
  return undefined;
}
