import http from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Registry } from "prom-client";

/**
 * The operations HTTP server every service runs beside its API port: `/metrics` for Prometheus, `/healthz`
 * (the process is alive) and `/readyz` (the service can do its job now), for Kubernetes probes and humans.
 */
export interface OpsServerOptions {
  registry: Registry;
  /** Whether the service is ready to take traffic; called on every `/readyz`. */
  ready: () => boolean | Promise<boolean>;
}

export interface OpsServer {
  readonly server: http.Server;
  listen(port: number, host: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

/** Creates a registry with the process defaults (CPU, memory, event loop lag, GC) and a `service` label. */
export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  // prom-client exports these three gauges with a `_total` suffix, which `promtool check metrics` rejects (that
  // suffix is for counters). The same numbers are in nodejs_active_{handles,requests,resources} by type.
  for (const name of [
    "nodejs_active_handles_total",
    "nodejs_active_requests_total",
    "nodejs_active_resources_total",
  ]) {
    registry.removeSingleMetric(name);
  }
  return registry;
}

export function createOpsServer(options: OpsServerOptions): OpsServer {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(405, "method not allowed\n");
      return;
    }
    if (path === "/metrics") {
      options.registry.metrics().then(
        (text) => send(200, text, options.registry.contentType),
        () => send(500, "metrics unavailable\n"),
      );
    } else if (path === "/healthz") {
      send(200, "ok\n");
    } else if (path === "/readyz") {
      Promise.resolve(options.ready()).then(
        (ready) => send(ready ? 200 : 503, ready ? "ready\n" : "not ready\n"),
        () => send(503, "not ready\n"),
      );
    } else {
      send(404, "not found: try /metrics, /healthz or /readyz\n");
    }
  });
  server.keepAliveTimeout = 5_000;
  return {
    server,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
