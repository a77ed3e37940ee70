import http from "node:http";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "@shadowmesh/common";
import type { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import type { Config } from "./config.js";
import { type PublicMetricsImpl, routes } from "./connect.js";

export interface AppServerDeps {
  config: Config;
  logger: Logger;
  predict: ServiceImpl<typeof PredictService>;
  metrics: PublicMetricsImpl;
  shutdownSignal?: AbortSignal;
}

/** Answers every RPC with UNIMPLEMENTED until the forwarding is built; honest, with the right code. */
export function notImplemented(what: string): never {
  throw new ConnectError(`${what} is not implemented yet`, Code.Unimplemented);
}

/** Builds the HTTP/1.1 server (Connect and gRPC-web) from its dependencies; never listens. */
export function createAppServer(deps: AppServerDeps): http.Server {
  const handler = connectNodeAdapter({
    routes: routes(deps.predict, deps.metrics),
    ...(deps.shutdownSignal ? { shutdownSignal: deps.shutdownSignal } : {}),
    requireConnectProtocolHeader: false,
  });
  const server = http.createServer((req, res) => {
    res.setHeader("x-content-type-options", "nosniff");
    handler(req, res);
  });
  return server;
}
