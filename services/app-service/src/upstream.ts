import type { Transport } from "@connectrpc/connect";
import { createGrpcJsTransport } from "@shadowmesh/common";

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
 * Options of every upstream channel. Channelz bookkeeping costs time on every call and nothing here reads it;
 * grpc-js's own transparent retries are off because the forwarders retry UNAVAILABLE themselves, once, with jitter,
 * within the deadline and only where the contract allows (upstream-call.ts): two retry layers would multiply
 * attempts. The reconnect backoff is common's RECONNECT_OPTIONS (first retry after 100 ms, none more than 1 s apart).
 */
const CHANNEL_OPTIONS = { "grpc.enable_channelz": 0, "grpc.enable_retries": 0 } as const;

/**
 * The production transport: gRPC over HTTP/2 cleartext (h2c) to `address` on one grpc-js channel
 * (`createGrpcJsTransport` from `@shadowmesh/common`: connect's types at the edges, grpc-js on the wire — faster on
 * this hop than connect-node's gRPC transport, docs/architecture.md). Clients on it are connect's own
 * `createClient(Service, transport)`.
 */
export function upstreamTransport(address: string): UpstreamTransport {
  return createGrpcJsTransport({ address, channelOptions: CHANNEL_OPTIONS });
}
