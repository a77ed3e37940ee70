import http2 from "node:http2";
import { create } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { bindGrpcServer, createLogger, createRegistry } from "@shadowmesh/common";
import { PredictResponseSchema } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { predictRoutes } from "../connect.js";
import { createModelServer } from "../server.js";

/**
 * The transport ceiling: the same server stack as model-service (grpc-js through the @shadowmesh/common adapter,
 * health, reflection, grpc_server_* metrics) answering Predict with a constant response and no inference.
 * With `connect`, the same routes function (connect.ts) served by connect-node's gRPC server instead, for the
 * comparison.
 * Usage: node dist/bench/ceiling-server.js <grpc-js|connect> <port>; prints "listening <port>".
 */
const [kind, portArg] = process.argv.slice(2);
const response = create(PredictResponseSchema, {
  prediction: {
    label: "spam",
    scores: [
      { label: "ham", probability: 0.1 },
      { label: "spam", probability: 0.9 },
    ],
    modelName: "ceiling",
    modelVersion: "0.0.0",
    requestId: "00000000-0000-0000-0000-000000000000",
    inferenceMs: 0,
  },
});
const impl = { predict: () => response };

if (kind === "connect") {
  const server = http2.createServer(
    connectNodeAdapter({
      routes: predictRoutes(impl),
      grpcWeb: false,
      connect: false,
    }),
  );
  server.listen(Number(portArg ?? 0), "127.0.0.1", () => {
    const address = server.address();
    console.log(`listening ${typeof address === "object" && address ? address.port : 0}`);
  });
} else {
  const { server, health } = createModelServer({
    logger: createLogger("ceiling", "warn"),
    registry: createRegistry("ceiling"),
    predict: impl,
    maxReceiveMessageBytes: 4 * 1024 * 1024,
  });
  const port = await bindGrpcServer(server, "127.0.0.1", Number(portArg ?? 0));
  health.set("SERVING");
  console.log(`listening ${port}`);
}
