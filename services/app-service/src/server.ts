import http from "node:http";
import { cors, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { type Logger, REQUEST_ID_HEADER } from "@shadowmesh/common";
import type { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import type { Config } from "./config.js";
import { type PublicMetricsImpl, routes } from "./connect.js";
import type { AppMetrics } from "./metrics.js";
import { createRequestInterceptor } from "./request-interceptor.js";
import { createStaticHandler, type StaticHandler } from "./static-files.js";

export interface AppServerDeps {
  config: Pick<Config, "CORS_ORIGINS" | "MAX_BODY_BYTES" | "WEB_DIR" | "HTTP_REQUEST_TIMEOUT_MS">;
  logger: Logger;
  metrics: AppMetrics;
  predict: ServiceImpl<typeof PredictService>;
  metricsService: PublicMetricsImpl;
  /** Aborts the handler contexts of in-flight calls (graceful shutdown). */
  shutdownSignal?: AbortSignal;
}

const ALLOWED_HEADERS = [...cors.allowedHeaders, REQUEST_ID_HEADER].join(", ");
const EXPOSED_HEADERS = [...cors.exposedHeaders, REQUEST_ID_HEADER].join(", ");
const ALLOWED_METHODS = cors.allowedMethods.join(", ");

/** Headers on every response: no MIME sniffing, no framing, no referrer leaks. (Node's http sends no x-powered-by.) */
function setSecurityHeaders(res: http.ServerResponse): void {
  res.setHeader("x-content-type-options", "nosniff");
  res.setHeader("x-frame-options", "DENY");
  res.setHeader("referrer-policy", "no-referrer");
  res.setHeader("cross-origin-opener-policy", "same-origin");
}

function isSameOrigin(origin: string, req: http.IncomingMessage): boolean {
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/**
 * Builds the HTTP/1.1 server from its dependencies; never listens.
 *
 * One HTTP/1.1 port serves the Connect protocol (JSON and binary, POST and GET) and gRPC-web — what browsers and
 * `buf curl` speak — and, when WEB_DIR is set, the web app. Cross-origin calls are refused unless the
 * origin is on the CORS allowlist; same-origin calls (the web app served here) need no CORS at all.
 */
export function createAppServer(deps: AppServerDeps): http.Server {
  const { config, logger, metrics } = deps;
  const serveStatic: StaticHandler | undefined = config.WEB_DIR
    ? createStaticHandler(config.WEB_DIR)
    : undefined;
  const allowed = new Set(config.CORS_ORIGINS);
  const handler = connectNodeAdapter({
    routes: routes(deps.predict, deps.metricsService),
    interceptors: [createRequestInterceptor(metrics, logger)],
    readMaxBytes: config.MAX_BODY_BYTES,
    ...(deps.shutdownSignal ? { shutdownSignal: deps.shutdownSignal } : {}),
    // curl and `buf curl` need not send Connect-Protocol-Version.
    requireConnectProtocolHeader: false,
    fallback: (req, res) => {
      if (serveStatic) {
        serveStatic(req as http.IncomingMessage, res as http.ServerResponse);
        return;
      }
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end("not found\n");
    },
  });

  const server = http.createServer((req, res) => {
    setSecurityHeaders(res);
    const origin = req.headers.origin;
    if (origin !== undefined && !isSameOrigin(origin, req)) {
      if (allowed.has(origin)) {
        res.setHeader("access-control-allow-origin", origin);
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
      } else if (req.method !== "GET" && req.method !== "HEAD") {
        // A GET from elsewhere gets no CORS headers, so a browser will not let the page read the answer; anything
        // else (a preflight, a POST) is refused outright.
        res.writeHead(403, { "content-type": "text/plain; charset=utf-8", vary: "Origin" });
        res.end("origin not allowed\n");
        return;
      }
    }
    handler(req, res);
  });
  server.requestTimeout = config.HTTP_REQUEST_TIMEOUT_MS;
  server.headersTimeout = Math.min(config.HTTP_REQUEST_TIMEOUT_MS, 10_000);
  return server;
}
