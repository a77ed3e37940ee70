import type http from "node:http";

/**
 * Graceful stop of app-service's HTTP server, busy keep-alive connections included.
 *
 * `server.close()` stops accepting and closes idle connections, but a client that keeps a connection busy (a load
 * generator, a browser polling) sends its next request on the same socket before it ever becomes idle, and Node
 * keeps answering those forever: the process then outlives its shutdown limit and is killed mid-request. So once
 * draining starts, every response — the in-flight ones whose headers are not out yet and every request that still
 * arrives on an open connection — carries `Connection: close`, and Node closes each socket after its response.
 * In-flight calls finish; a connection ends after at most the one request it is serving.
 */
export interface Drainer {
  /** Responses not yet finished. */
  readonly inFlight: number;
  /**
   * Stops accepting, finishes in-flight requests, closes every connection as its response ends; after `timeoutMs`
   * calls `onTimeout` (abort the handlers) and closes every connection. Resolves when the server has closed.
   */
  drain(timeoutMs: number, onTimeout?: () => void): Promise<void>;
}

export function createDrainer(server: http.Server): Drainer {
  const open = new Set<http.ServerResponse>();
  let draining = false;
  // Runs before the application's own request listener.
  server.prependListener("request", (_req: http.IncomingMessage, res: http.ServerResponse) => {
    if (draining) {
      res.setHeader("connection", "close");
    }
    open.add(res);
    res.once("close", () => open.delete(res));
  });
  return {
    get inFlight() {
      return open.size;
    },
    drain: async (timeoutMs, onTimeout) => {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const res of open) {
        if (!res.headersSent) {
          res.setHeader("connection", "close");
        }
      }
      server.closeIdleConnections();
      // A connection whose response ended between two checks is idle now: close it.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      const timer = setTimeout(() => {
        onTimeout?.();
        server.closeAllConnections();
      }, timeoutMs);
      await closed;
      clearInterval(sweep);
      clearTimeout(timer);
    },
  };
}
