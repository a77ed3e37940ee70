import {
  create,
  type DescMessage,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { type Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { createServiceDefinition } from "./grpc-adapter.js";
import { RECONNECT_OPTIONS } from "./grpc-transport.js";

/** Per-call options of a GrpcClient method. @deprecated connect's CallOptions. */
export interface GrpcCallOptions {
  /** Request metadata, for example `{ "x-request-id": "…" }`. */
  headers?: Record<string, string>;
  /** The call's deadline as an absolute time in ms since the epoch (takes precedence over timeoutMs). */
  deadline?: number;
  /** The call's timeout in ms from now. */
  timeoutMs?: number;
  /** Aborts the call. */
  signal?: AbortSignal;
  /** Receives the response metadata (headers) when they arrive. */
  onHeader?: (metadata: grpc.Metadata) => void;
}

type UnaryFn<I extends DescMessage, O extends DescMessage> = (
  request: MessageInitShape<I>,
  options?: GrpcCallOptions,
) => Promise<MessageShape<O>>;
type ServerStreamingFn<I extends DescMessage, O extends DescMessage> = (
  request: MessageInitShape<I>,
  options?: GrpcCallOptions,
) => AsyncIterable<MessageShape<O>>;

/**
 * A promise-based grpc-js client for a protobuf-es service; errors are ConnectErrors with the gRPC code.
 * @deprecated use connect's `createClient(Service, createGrpcJsTransport({ address }))` (grpc-transport.ts); kept
 * until app-service and metrics-service are migrated.
 */
export type GrpcClient<S extends DescService> = {
  [K in keyof S["method"]]: S["method"][K] extends DescMethodUnary<infer I, infer O>
    ? UnaryFn<I, O>
    : S["method"][K] extends DescMethodServerStreaming<infer I, infer O>
      ? ServerStreamingFn<I, O>
      : never;
} & {
  /** The underlying grpc-js client (for channel state and waitForReady). */
  readonly raw: grpc.Client;
  /** Closes the channel. */
  close(): void;
};

/** Converts a grpc-js ServiceError to a ConnectError carrying the same code and message. */
export function fromServiceError(error: grpc.ServiceError | Error): ConnectError {
  if ("code" in error && typeof error.code === "number") {
    const serviceError = error as grpc.ServiceError;
    const metadata = new Headers();
    for (const [key, value] of Object.entries(serviceError.metadata?.getMap() ?? {})) {
      if (typeof value === "string") {
        metadata.set(key, value);
      }
    }
    return new ConnectError(
      serviceError.details || serviceError.message,
      serviceError.code as number as Code,
      metadata,
    );
  }
  return ConnectError.from(error);
}

function callOptionsOf(options: GrpcCallOptions | undefined): grpc.CallOptions {
  const callOptions: grpc.CallOptions = {};
  if (options?.deadline !== undefined) {
    callOptions.deadline = options.deadline;
  } else if (options?.timeoutMs !== undefined) {
    callOptions.deadline = Date.now() + options.timeoutMs;
  }
  return callOptions;
}

function metadataOf(options: GrpcCallOptions | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(options?.headers ?? {})) {
    metadata.set(key, value);
  }
  return metadata;
}

/**
 * @deprecated use connect's `createClient(Service, createGrpcJsTransport({ address }))` (grpc-transport.ts).
 * Creates a grpc-js client for `service` at `address` (host:port, plaintext h2c), with RECONNECT_OPTIONS unless
 * `channelOptions` says otherwise.
 * grpc-js is used instead of connect-node's gRPC transport because it is faster on the hop between services
 * (see docs/architecture.md#why-grpc-js-inside-and-connect-node-at-the-edge).
 */
export function createGrpcClient<S extends DescService>(
  service: S,
  address: string,
  channelOptions: grpc.ChannelOptions = {},
): GrpcClient<S> {
  const definition = createServiceDefinition(service);
  const Constructor = grpc.makeGenericClientConstructor(definition, service.typeName);
  const raw = new Constructor(address, grpc.credentials.createInsecure(), {
    ...RECONNECT_OPTIONS,
    ...channelOptions,
  });
  const client: Record<string, unknown> = { raw, close: () => raw.close() };
  for (const method of service.methods) {
    const {
      path,
      requestSerialize: serialize,
      responseDeserialize: deserialize,
    } = definition[method.localName] as grpc.MethodDefinition<
      MessageShape<DescMessage>,
      MessageShape<DescMessage>
    >;
    if (method.methodKind === "unary") {
      client[method.localName] = (init: MessageInitShape<DescMessage>, options?: GrpcCallOptions) =>
        new Promise((resolve, reject) => {
          const call = raw.makeUnaryRequest(
            path,
            serialize,
            deserialize,
            create(method.input, init),
            metadataOf(options),
            callOptionsOf(options),
            (error, response) => {
              options?.signal?.removeEventListener("abort", abort);
              if (error) {
                reject(fromServiceError(error));
                return;
              }
              resolve(response);
            },
          );
          const abort = () => call.cancel();
          if (options?.signal) {
            if (options.signal.aborted) {
              call.cancel();
            } else {
              options.signal.addEventListener("abort", abort, { once: true });
            }
          }
          if (options?.onHeader) {
            call.on("metadata", options.onHeader);
          }
        });
    } else if (method.methodKind === "server_streaming") {
      client[method.localName] = (init: MessageInitShape<DescMessage>, options?: GrpcCallOptions) =>
        (async function* () {
          const call = raw.makeServerStreamRequest(
            path,
            serialize,
            deserialize,
            create(method.input, init),
            metadataOf(options),
            callOptionsOf(options),
          );
          const abort = () => call.cancel();
          options?.signal?.addEventListener("abort", abort, { once: true });
          if (options?.onHeader) {
            call.on("metadata", options.onHeader);
          }
          try {
            for await (const message of call) {
              yield message as MessageShape<DescMessage>;
            }
          } catch (error) {
            throw fromServiceError(error as grpc.ServiceError);
          } finally {
            options?.signal?.removeEventListener("abort", abort);
            call.cancel();
          }
        })();
    }
  }
  return client as GrpcClient<S>;
}
