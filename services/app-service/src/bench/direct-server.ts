import { createLogger } from "@shadowmesh/common";
import { Registry } from "prom-client";
import { createAppMetrics } from "../metrics.js";
import { createAppServer } from "../server.js";
import { cannedResponse, requestIdOf } from "./canned.js";

/**
 * `node dist/bench/direct-server.js <port>`: app-service's own HTTP stack (the same server, interceptor, metrics and
 * Connect handler as the real one) answering Predict in-process with a fixed prediction — app-service "without the
 * hop", the reference `npm run bench:app` divides by.
 */
const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: direct-server.js <port>");
  process.exit(2);
}
const logger = createLogger("app-service-direct", "warn");
const unavailable = () => {
  throw new Error("not part of the benchmark");
};
const server = createAppServer({
  config: {
    CORS_ORIGINS: [],
    MAX_BODY_BYTES: 256 * 1024,
    WEB_DIR: "",
    HTTP_REQUEST_TIMEOUT_MS: 30_000,
    PUBLIC_HOSTS: [],
    TRUST_FORWARDED_PROTO: false,
  },
  logger,
  metrics: createAppMetrics(new Registry()),
  predict: {
    predict: (_request, context) => cannedResponse(requestIdOf(context.requestHeader)),
    predictBatch: unavailable,
    getModel: unavailable,
  },
  metricsService: {
    submitFeedback: unavailable,
    getShadowReport: unavailable,
    watchShadowReport: unavailable,
    listCandidates: unavailable,
  },
});
server.listen(port, "127.0.0.1", () => console.log(`direct app-service on ${port}`));
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
