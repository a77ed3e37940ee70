import { Code, ConnectError, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addService } from "./grpc-adapter.js";
import { bindGrpcServer, stopGrpcServer } from "./grpc-server.js";
import { createGrpcJsTransport, type GrpcJsTransport } from "./grpc-transport.js";

describe("the grpc-js adapter (called by connect clients on createGrpcJsTransport)", () => {
  const server = new grpc.Server();
  let transport: GrpcJsTransport;
  const calls: { method: string; code: number }[] = [];
  const logged: unknown[] = [];

  beforeAll(async () => {
    addService(
      server,
      PredictService,
      {
        predict(request, context) {
          if (request.text === "boom") {
            throw new Error("secret internal detail");
          }
          if (request.text.trim() === "") {
            throw new ConnectError("text must not be empty", Code.InvalidArgument);
          }
          context.responseHeader.set("x-request-id", context.requestHeader.get("x-request-id") ?? "none");
          return {
            prediction: {
              label: request.text.toUpperCase(),
              requestId: context.requestHeader.get("x-request-id") ?? "",
            },
          };
        },
      },
      {
        observer: (method, code) => calls.push({ method: method.name, code }),
        logger: { error: (obj) => logged.push(obj) },
      },
    );
    addService(server, MetricsService, {
      async *watchShadowReport(request) {
        for (let i = 0; i < request.maxDisagreements; i++) {
          yield { report: { totals: { pairCount: BigInt(i) } } };
        }
      },
    });
    transport = createGrpcJsTransport({
      address: `127.0.0.1:${await bindGrpcServer(server, "127.0.0.1", 0)}`,
    });
  });
  afterAll(async () => {
    transport?.close();
    await stopGrpcServer(server, 1000);
  });

  it("serves a unary call with request and response metadata", async () => {
    const client = createClient(PredictService, transport);
    let echoed: string | undefined;
    const response = await client.predict(
      { text: "hello" },
      {
        headers: { "x-request-id": "req-1" },
        timeoutMs: 5000,
        onHeader: (header) => {
          echoed = header.get("x-request-id") ?? undefined;
        },
      },
    );
    expect(response.prediction?.label).toBe("HELLO");
    expect(response.prediction?.requestId).toBe("req-1");
    expect(echoed).toBe("req-1");
  });

  it("passes a ConnectError's code and message through, and hides unexpected errors behind INTERNAL", async () => {
    const client = createClient(PredictService, transport);
    await expect(client.predict({ text: "  " })).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: "text must not be empty",
    });
    const internal = await client.predict({ text: "boom" }).then(
      () => new ConnectError("expected a failure"),
      (error: unknown) => ConnectError.from(error),
    );
    expect(internal.code).toBe(Code.Internal);
    expect(internal.rawMessage).not.toContain("secret");
    expect(logged).toHaveLength(1);
  });

  it("answers UNIMPLEMENTED for methods the implementation leaves out", async () => {
    const client = createClient(PredictService, transport);
    await expect(client.getModel({})).rejects.toMatchObject({ code: Code.Unimplemented });
  });

  it("streams server-streaming responses in order", async () => {
    const client = createClient(MetricsService, transport);
    const pairs: bigint[] = [];
    for await (const update of client.watchShadowReport({ maxDisagreements: 3 })) {
      pairs.push(update.report?.totals?.pairCount ?? -1n);
    }
    expect(pairs).toEqual([0n, 1n, 2n]);
  });

  it("reports every finished call to the observer with its status code", () => {
    expect(calls).toEqual(
      expect.arrayContaining([
        { method: "Predict", code: grpc.status.OK },
        { method: "Predict", code: grpc.status.INVALID_ARGUMENT },
        { method: "Predict", code: grpc.status.INTERNAL },
        { method: "GetModel", code: grpc.status.UNIMPLEMENTED },
      ]),
    );
  });
});
