import type http2 from "node:http2";
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

/** A connect `Transport` to one upstream (model-service, a shadow, metrics-service) that can be closed. */
export type UpstreamTransport = Transport & {
  /** Closes the connection; calls still in flight fail. */
  close(): void;
};

/**
 * Makes the transport to the upstream at `address` (host:port). Injected into `createApp`, so that tests can hand in
 * connect's in-memory `createRouterTransport` instead, and the wire can change in one place.
 */
export type TransportFactory = (address: string) => UpstreamTransport;

/**
 * The production transport: gRPC over HTTP/2 cleartext (h2c) to `address`, one HTTP/2 connection per transport,
 * opened on the first call and again on the next call after it breaks. Clients on it are connect's own
 * `createClient(Service, transport)`.
 *
 * connect-node's gRPC transport for now; `createGrpcJsTransport` from `@shadowmesh/common` (a connect Transport on a
 * grpc-js channel, faster on this hop, with grpc-js's reconnect backoff) replaces it in this one function.
 */
export function upstreamTransport(address: string): UpstreamTransport {
  const baseUrl = `http://${address}`;
  const sessionManager = new GoawaySafeSessionManager(baseUrl);
  const transport = createGrpcTransport({ baseUrl, sessionManager });
  return {
    unary: transport.unary.bind(transport),
    stream: transport.stream.bind(transport),
    close: () => sessionManager.abort(),
  };
}

/**
 * connect-node's session manager, except that an upstream going away cannot crash app-service: on a GOAWAY that
 * arrives while a connection has no open streams (a model-service shutting down between two calls) the manager
 * destroys the connection with an error that Node raises later, after the manager may have removed its own error
 * listeners — an uncaught exception (connectrpc/connect-es#1768, open; the "reconnects" test in forwarding.test.ts
 * hit it). Every connection that carries a request gets a listener that swallows that late error; the manager's own
 * listeners still see every error while it uses the connection.
 */
class GoawaySafeSessionManager extends Http2SessionManager {
  readonly #guarded = new WeakSet<http2.Http2Session>();

  override async request(
    ...args: Parameters<Http2SessionManager["request"]>
  ): Promise<http2.ClientHttp2Stream> {
    const stream = await super.request(...args);
    const session = stream.session;
    if (session && !this.#guarded.has(session)) {
      this.#guarded.add(session);
      session.on("error", () => {});
    }
    return stream;
  }
}
