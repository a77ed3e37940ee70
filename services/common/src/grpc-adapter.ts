import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { Code, ConnectError, createHandlerContext, type ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";

/**
 * Serves protobuf-es v2 services on a grpc-js server.
 *
 * grpc-js wants a service definition with a path, a serializer and a deserializer per method; protobuf-es gives us
 * the descriptors, so we derive the definition from them (toBinary/fromBinary) instead of loading .proto files at run
 * time. Implementations have the same shape as connect-node's `ServiceImpl`, so one class can be served by grpc-js
 * here and by a Connect router (in-memory tests, app-service) alike.
 */

/** Observes every finished call: the basis of the grpc_server_* metrics. */
export type CallObserver = (method: DescMethod, code: grpc.status, seconds: number) => void;

/** Something that logs unexpected failures; pino's logger fits. */
export interface ErrorLogger {
  error(obj: object, msg: string): void;
}

export interface AddServiceOptions {
  /** Called once per finished call with its gRPC status code and duration. */
  observer?: CallObserver;
  /** Logs handler failures that are not ConnectErrors (they are answered with a generic INTERNAL). */
  logger?: ErrorLogger;
  /** Aborted when the server shuts down; handlers see it through `context.signal`. */
  shutdownSignal?: AbortSignal;
}

const REQUEST_METHOD = "POST";

/** What unary and streaming server calls have in common. */
type SurfaceCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

/** Builds the grpc-js service definition for a protobuf-es service descriptor. */
export function createServiceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<
    string,
    grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>
  > = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (message: MessageShape<DescMessage>) => Buffer.from(toBinary(method.input, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
      responseSerialize: (message: MessageShape<DescMessage>) =>
        Buffer.from(toBinary(method.output, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
      originalName: method.localName,
    };
  }
  return definition;
}

/** Maps any error to a ConnectError; unexpected ones become a generic INTERNAL and are logged. */
function toConnectError(error: unknown, logger: ErrorLogger | undefined, path: string): ConnectError {
  if (error instanceof ConnectError) {
    return error;
  }
  logger?.error({ err: error, method: path }, "unexpected error in handler");
  return new ConnectError("internal error", Code.Internal);
}

/** Connect's Code values are the gRPC status codes, by specification. */
function grpcStatusOf(error: ConnectError): grpc.status {
  return error.code as number as grpc.status;
}

function metadataToHeaders(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(metadata.getMap())) {
    if (typeof value === "string") {
      headers.set(key, value);
    }
  }
  return headers;
}

function headersToMetadata(headers: Headers): grpc.Metadata | undefined {
  let metadata: grpc.Metadata | undefined;
  headers.forEach((value, key) => {
    metadata ??= new grpc.Metadata();
    metadata.set(key, value);
  });
  return metadata;
}

function deadlineMs(call: SurfaceCall): number | undefined {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

function contextFor(service: DescService, method: DescMethod, call: SurfaceCall, options: AddServiceOptions) {
  const requestAbort = new AbortController();
  call.on("cancelled", () => requestAbort.abort(new ConnectError("the call was cancelled", Code.Canceled)));
  const timeoutMs = deadlineMs(call);
  return createHandlerContext({
    service,
    method,
    protocolName: "grpc",
    requestMethod: REQUEST_METHOD,
    url: `/${service.typeName}/${method.name}`,
    requestHeader: metadataToHeaders(call.metadata),
    requestSignal: requestAbort.signal,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(options.shutdownSignal ? { shutdownSignal: options.shutdownSignal } : {}),
  });
}

function errorToStatus(error: ConnectError): grpc.StatusObject {
  const metadata = headersToMetadata(error.metadata) ?? new grpc.Metadata();
  return { code: grpcStatusOf(error), details: error.rawMessage, metadata };
}

/**
 * Adds a protobuf-es service with a Connect-style implementation to a grpc-js server.
 * Methods missing from `impl` answer UNIMPLEMENTED.
 */
export function addService<S extends DescService>(
  server: grpc.Server,
  service: S,
  impl: Partial<ServiceImpl<S>>,
  options: AddServiceOptions = {},
): void {
  const definition = createServiceDefinition(service);
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const fn = (impl as Record<string, unknown>)[method.localName] as
      | ((req: unknown, ctx: unknown) => unknown)
      | undefined;
    const path = `/${service.typeName}/${method.name}`;
    const observe = (code: grpc.status, started: bigint) =>
      options.observer?.(method, code, Number(process.hrtime.bigint() - started) / 1e9);
    const unimplemented = (): ConnectError =>
      new ConnectError(`${path} is not implemented by this server`, Code.Unimplemented);

    if (method.methodKind === "unary") {
      const unary: grpc.handleUnaryCall<MessageShape<DescMessage>, MessageShape<DescMessage>> = (
        call,
        callback,
      ) => {
        const started = process.hrtime.bigint();
        const fail = (error: unknown) => {
          const connectError = toConnectError(error, options.logger, path);
          observe(grpcStatusOf(connectError), started);
          callback(errorToStatus(connectError));
        };
        if (!fn) {
          fail(unimplemented());
          return;
        }
        const context = contextFor(service, method, call, options);
        let result: unknown;
        try {
          result = fn.call(impl, call.request, context);
        } catch (error) {
          fail(error);
          return;
        }
        Promise.resolve(result).then((init) => {
          const trailer = headersToMetadata(context.responseTrailer);
          const header = headersToMetadata(context.responseHeader);
          if (header) {
            call.sendMetadata(header);
          }
          const message = create(method.output, init as MessageInitShape<DescMessage>);
          observe(grpc.status.OK, started);
          callback(null, message, trailer);
        }, fail);
      };
      handlers[method.localName] = unary;
    } else if (method.methodKind === "server_streaming") {
      const streaming: grpc.handleServerStreamingCall<
        MessageShape<DescMessage>,
        MessageShape<DescMessage>
      > = (call) => {
        const started = process.hrtime.bigint();
        const fail = (error: unknown) => {
          const connectError = toConnectError(error, options.logger, path);
          observe(grpcStatusOf(connectError), started);
          call.destroy(Object.assign(new Error(connectError.rawMessage), errorToStatus(connectError)));
        };
        if (!fn) {
          fail(unimplemented());
          return;
        }
        const context = contextFor(service, method, call, options);
        void (async () => {
          try {
            const iterable = fn.call(impl, call.request, context) as AsyncIterable<
              MessageInitShape<DescMessage>
            >;
            let headerSent = false;
            for await (const init of iterable) {
              if (call.cancelled) {
                break;
              }
              if (!headerSent) {
                const header = headersToMetadata(context.responseHeader);
                if (header) {
                  call.sendMetadata(header);
                }
                headerSent = true;
              }
              const message = create(method.output, init);
              if (!call.write(message)) {
                await new Promise<void>((resolve) => call.once("drain", () => resolve()));
              }
            }
            observe(call.cancelled ? grpc.status.CANCELLED : grpc.status.OK, started);
            call.end(headersToMetadata(context.responseTrailer));
          } catch (error) {
            if (call.cancelled) {
              observe(grpc.status.CANCELLED, started);
              return;
            }
            fail(error);
          }
        })();
      };
      handlers[method.localName] = streaming;
    } else {
      throw new Error(`${path}: ${method.methodKind} methods are not supported by the grpc-js adapter`);
    }
  }
  server.addService(definition, handlers);
}
