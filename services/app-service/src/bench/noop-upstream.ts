import type * as grpc from "@grpc/grpc-js";
import { addService, bindGrpcServer, createGrpcServer, HealthReporter } from "@shadowmesh/common";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { cannedResponse, requestIdOf } from "./canned.js";

/**
 * `node dist/bench/noop-upstream.js <port>…`: a model-service stand-in for `npm run bench:app` — the real grpc-js
 * server stack and contract, answering every Predict with a fixed prediction and no inference, so that the benchmark
 * measures app-service's hop, not the model. One process can serve several ports (primary and shadow).
 */
const ports = process.argv.slice(2).map(Number);
if (ports.length === 0 || ports.some((port) => !Number.isInteger(port) || port <= 0)) {
  console.error("usage: noop-upstream.js <port> [port…]");
  process.exit(2);
}
const servers: grpc.Server[] = [];
for (const port of ports) {
  const server = createGrpcServer();
  const health = new HealthReporter([PredictService.typeName]);
  health.addToServer(server);
  addService(server, PredictService, {
    predict: (_request, context) => cannedResponse(requestIdOf(context.requestHeader)),
    predictBatch: (request, context) => ({
      predictions: request.texts.map(
        () => cannedResponse(requestIdOf(context.requestHeader)).prediction ?? {},
      ),
    }),
  });
  await bindGrpcServer(server, "127.0.0.1", port);
  health.set("SERVING");
  servers.push(server);
}
console.log(`noop upstream serving on ${ports.join(", ")}`);
const stop = () => {
  for (const server of servers) {
    server.forceShutdown();
  }
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
