import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient, createRouterTransport, type Transport } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type * as grpc from "@grpc/grpc-js";
import {
  bindGrpcServer,
  createGrpcJsTransport,
  createGrpcServer,
  registerRoutes,
  stopGrpcServer,
} from "@shadowmesh/common";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { predictRoutes } from "./connect.js";

/** A PredictService that echoes what it was given and refuses an empty text, as the real one does. */
const impl = predictRoutes({
  predict(request, context) {
    if (request.text.trim() === "") {
      throw new ConnectError("text must not be empty", Code.InvalidArgument);
    }
    return {
      prediction: {
        label: request.text.includes("free") ? "spam" : "ham",
        requestId: context.requestHeader.get("x-request-id") ?? "",
      },
    };
  },
});

describe("one routes function, three servers (connect.ts)", () => {
  const transports: Record<string, Transport & { close?: () => void }> = {};
  let grpcServer: grpc.Server;
  let connectServer: http2.Http2Server;

  beforeAll(async () => {
    // grpc-js, as model-service serves it (registerRoutes, server.ts).
    grpcServer = createGrpcServer();
    registerRoutes(grpcServer, impl);
    const grpcPort = await bindGrpcServer(grpcServer, "127.0.0.1", 0);
    transports["grpc-js"] = createGrpcJsTransport({ address: `127.0.0.1:${grpcPort}` });
    // connect-node's gRPC server, given the very same routes function.
    connectServer = http2.createServer(connectNodeAdapter({ routes: impl, connect: false, grpcWeb: false }));
    await new Promise<void>((resolve) => connectServer.listen(0, "127.0.0.1", resolve));
    const connectPort = (connectServer.address() as AddressInfo).port;
    transports["connect-node"] = createGrpcJsTransport({ address: `127.0.0.1:${connectPort}` });
    // In memory, no socket.
    transports["in-memory"] = createRouterTransport(impl);
  });

  afterAll(async () => {
    for (const transport of Object.values(transports)) transport.close?.();
    await stopGrpcServer(grpcServer, 1000);
    await new Promise((resolve) => connectServer.close(resolve));
  });

  it.each(["grpc-js", "connect-node", "in-memory"])("%s answers the same, errors included", async (name) => {
    const client = createClient(PredictService, transports[name] as Transport);
    const { prediction } = await client.predict(
      { text: "free money" },
      { headers: { "x-request-id": `id-${name}` } },
    );
    expect(prediction).toMatchObject({ label: "spam", requestId: `id-${name}` });
    await expect(client.predict({ text: "  " })).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: "text must not be empty",
    });
    // Methods the routes leave out are UNIMPLEMENTED everywhere.
    await expect(client.getModel({})).rejects.toMatchObject({ code: Code.Unimplemented });
  });
});
