import * as grpc from "@grpc/grpc-js";
import { listenErrorCode } from "./listen.js";

/** Options for every grpc-js server of ours; each one is explained because each one matters in production. */
export interface GrpcServerOptions {
  /** Largest request message accepted; bigger ones are refused with RESOURCE_EXHAUSTED before any handler runs. */
  maxReceiveMessageBytes?: number;
}

/** When each call's request headers were received (process.hrtime.bigint()), keyed by its request metadata. */
const receivedAt = new WeakMap<grpc.Metadata, bigint>();

/**
 * Stamps every call with the time its request headers were received. grpc-js runs server interceptors in the
 * HTTP/2 server's "stream" event, i.e. in the event-loop turn that reads the call's HEADERS frame from the socket:
 * the earliest moment a grpc-js server can see a call. The request message arrives (and is deserialized) later,
 * and only then does grpc-js call the handler; the metadata object seen here is the one the handler gets, which
 * is how the stamp reaches it (see callReceivedAt). A WeakMap, not a header, so that no caller can forge it.
 */
const stampReceipt: grpc.ServerInterceptor = (_method, call) => {
  const at = process.hrtime.bigint();
  return new grpc.ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveMetadata: (metadata, nextMetadata) => {
          receivedAt.set(metadata, at);
          nextMetadata(metadata);
        },
      }),
  });
};

/**
 * When the call with this request metadata had its headers received (process.hrtime.bigint()), if it came through a
 * server made by createGrpcServer.
 */
export function callReceivedAt(metadata: grpc.Metadata): bigint | undefined {
  return receivedAt.get(metadata);
}

export function createGrpcServer(options: GrpcServerOptions = {}): grpc.Server {
  return new grpc.Server({
    interceptors: [stampReceipt],
    "grpc.max_receive_message_length": options.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
    // Close idle client connections after 5 minutes so that long-lived peers re-resolve and rebalance.
    "grpc.max_connection_idle_ms": 5 * 60_000,
    // Ping idle connections every 30 s so that dead peers are noticed (clients may ping at most every 10 s).
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.http2.min_ping_interval_without_data_ms": 10_000,
  });
}

const BIND_FAILED_LOG = "No address added out of total";
let bindLogFiltered = false;

/**
 * grpc-js logs a failed bind on stderr ("E No address added out of total 1 resolved") before it calls back with
 * the same error; bindGrpcServer reports that error itself (one line per service, see listen.ts), so that one log
 * line is dropped. Every other grpc-js log line is written as grpc-js's default logger writes it.
 */
function filterBindFailureLog(): void {
  if (bindLogFiltered) return;
  bindLogFiltered = true;
  const write =
    (prefix: string) =>
    (message?: unknown, ...rest: unknown[]) => {
      if (typeof message === "string" && message.startsWith(BIND_FAILED_LOG)) return;
      console.error(`${prefix} ${String(message)}`, ...rest);
    };
  grpc.setLogger({ error: write("E"), info: write("I"), debug: write("D") });
}

/**
 * Binds `server` to host:port over plaintext HTTP/2 (h2c; TLS is the mesh's job) and returns the bound port. A
 * failure rejects with the system error code (EADDRINUSE …) as `code`, which grpc-js itself leaves only in the
 * message.
 */
export function bindGrpcServer(server: grpc.Server, host: string, port: number): Promise<number> {
  const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  filterBindFailureLog();
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (error) {
        reject(
          Object.assign(new Error(`cannot listen on ${address}: ${error.message}`), {
            code: listenErrorCode(error),
          }),
        );
        return;
      }
      resolve(bound);
    });
  });
}

/**
 * Stops accepting new calls and waits for in-flight ones to finish; after `timeoutMs` the remaining calls are
 * cancelled. Resolves once the server is closed.
 */
export function stopGrpcServer(server: grpc.Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
