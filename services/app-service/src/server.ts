import http from "node:http";
import { Code, cors, type ServiceImpl } from "@connectrpc/connect";
import {
  CLIENT_REQUEST_ID_HEADER,
  clientRequestIdProblem,
  type Logger,
  newRequestId,
  REQUEST_ID_HEADER,
} from "@shadowmesh/common";
import type { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import type { Config } from "./config.js";
import { type PublicMetricsImpl, routes } from "./connect.js";
import {
  hostAllowed,
  originDecision,
  POST_ONLY,
  pathOf,
  RPC_PATH,
  writeRpcError,
  writeText,
} from "./edge.js";
import type { AppMetrics } from "./metrics.js";
import { createRequestInterceptor } from "./request-interceptor.js";
import { createRpcHandler, MALFORMED_HEADER } from "./rpc-handler.js";
import { createStaticHandler, type StaticHandler } from "./static-files.js";

export interface AppServerDeps {
  config: Pick<
    Config,
    | "CORS_ORIGINS"
    | "MAX_BODY_BYTES"
    | "WEB_DIR"
    | "HTTP_REQUEST_TIMEOUT_MS"
    | "PUBLIC_HOSTS"
    | "TRUST_FORWARDED_PROTO"
  >;
  logger: Logger;
  metrics: AppMetrics;
  predict: ServiceImpl<typeof PredictService>;
  metricsService: PublicMetricsImpl;
  /** Aborts the handler contexts of in-flight calls (graceful shutdown). */
  shutdownSignal?: AbortSignal;
}

const ALLOWED_HEADERS = [...cors.allowedHeaders, REQUEST_ID_HEADER].join(", ");
const EXPOSED_HEADERS = [...cors.exposedHeaders, REQUEST_ID_HEADER, CLIENT_REQUEST_ID_HEADER].join(", ");
const ALLOWED_METHODS = cors.allowedMethods.join(", ");

/** Headers on every response: no MIME sniffing, no framing, no referrer leaks. (Node's http sends no x-powered-by.) */
function setSecurityHeaders(res: http.ServerResponse): void {
  res.setHeader("x-content-type-options", "nosniff");
  res.setHeader("x-frame-options", "DENY");
  res.setHeader("referrer-policy", "no-referrer");
  res.setHeader("cross-origin-opener-policy", "same-origin");
}

/**
 * Builds the HTTP/1.1 server from its dependencies; never listens.
 *
 * One HTTP/1.1 port serves the Connect protocol (JSON and binary; POST, and GET for the read-only RPCs) and
 * gRPC-web — what browsers and `buf curl` speak — and, when WEB_DIR is set, the web app. Every request passes the
 * edge rules first (edge.ts: Host, origin, no writes over GET); every RPC gets a fresh join key (UUIDv7) as its
 * `x-request-id`, the caller's own `x-request-id` travelling on as `x-client-request-id`.
 */
export function createAppServer(deps: AppServerDeps): http.Server {
  const { config, logger, metrics } = deps;
  const serveStatic: StaticHandler | undefined = config.WEB_DIR
    ? createStaticHandler(config.WEB_DIR)
    : undefined;
  const edge = {
    publicHosts: config.PUBLIC_HOSTS,
    trustForwardedProto: config.TRUST_FORWARDED_PROTO,
    corsOrigins: new Set(config.CORS_ORIGINS),
  };
  const rpc = createRpcHandler({
    routes: routes(deps.predict, deps.metricsService),
    interceptors: [createRequestInterceptor(metrics, logger)],
    readMaxBytes: config.MAX_BODY_BYTES,
    ...(deps.shutdownSignal ? { shutdownSignal: deps.shutdownSignal } : {}),
    // curl and `buf curl` need not send Connect-Protocol-Version.
    requireConnectProtocolHeader: false,
  });

  const server = http.createServer((req, res) => {
    setSecurityHeaders(res);
    const path = pathOf(req);
    const isRpc = RPC_PATH.test(path);
    if (!hostAllowed(req.headers.host, edge.publicHosts, req.socket.localPort)) {
      const message = `this server does not answer to host "${req.headers.host ?? ""}" (allowed: ${edge.publicHosts.length > 0 ? edge.publicHosts.join(", ") : "localhost, 127.0.0.1 and [::1] on this port"}; see APP_SERVICE_PUBLIC_HOSTS)`;
      logger.debug({ host: req.headers.host, path }, "refused: host not allowed");
      if (isRpc) {
        writeRpcError(req, res, Code.PermissionDenied, message, newRequestId(), {}, 421);
      } else {
        writeText(res, 421, message);
      }
      return;
    }
    if (!isRpc) {
      if (serveStatic) {
        serveStatic(req, res);
      } else {
        writeText(res, 404, "not found");
      }
      return;
    }

    // An API call: the join key first, so that every answer (refusals included) carries it.
    const requestId = newRequestId();
    const callerId = req.headers[REQUEST_ID_HEADER];
    delete req.headers[CLIENT_REQUEST_ID_HEADER];
    delete req.headers[MALFORMED_HEADER];
    if (callerId !== undefined) {
      req.headers[CLIENT_REQUEST_ID_HEADER] = Array.isArray(callerId) ? callerId.join(", ") : callerId;
    }
    req.headers[REQUEST_ID_HEADER] = requestId;
    res.setHeader(REQUEST_ID_HEADER, requestId);
    const clientRequestId = req.headers[CLIENT_REQUEST_ID_HEADER];
    if (typeof clientRequestId === "string" && clientRequestIdProblem(clientRequestId) === undefined) {
      res.setHeader(CLIENT_REQUEST_ID_HEADER, clientRequestId);
    }

    const decision = originDecision(req, edge);
    if (decision.kind === "refused") {
      logger.debug({ requestId, origin: req.headers.origin, path }, "refused: cross-origin");
      res.setHeader("vary", "Origin");
      writeRpcError(req, res, Code.PermissionDenied, decision.reason, requestId);
      return;
    }
    if (decision.kind === "allowed") {
      res.setHeader("access-control-allow-origin", decision.origin);
      res.setHeader("vary", "Origin");
      res.setHeader("access-control-expose-headers", EXPOSED_HEADERS);
      if (req.method === "OPTIONS") {
        res.writeHead(204, {
          "access-control-allow-methods": ALLOWED_METHODS,
          "access-control-allow-headers": ALLOWED_HEADERS,
          "access-control-max-age": "7200",
        });
        res.end();
        return;
      }
    }
    if (!rpc.paths.has(path)) {
      writeRpcError(req, res, Code.Unimplemented, `${path.slice(1)} is not served here`, requestId);
      return;
    }
    if (req.method === "GET" && POST_ONLY.has(path)) {
      writeRpcError(
        req,
        res,
        Code.Unimplemented,
        `${path.slice(1)} is served over POST only: it stores prediction records, and a GET can be sent by any web page`,
        requestId,
        { allow: "POST" },
        405,
      );
      return;
    }
    rpc.handle(req, res);
  });
  server.requestTimeout = config.HTTP_REQUEST_TIMEOUT_MS;
  server.headersTimeout = Math.min(config.HTTP_REQUEST_TIMEOUT_MS, 10_000);
  return server;
}
