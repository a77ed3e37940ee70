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
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { callReceivedAt } from "./grpc-server.js";

/**
 * Serves protobuf-es v2 services on a grpc-js server.
 *
 * grpc-js wants a service definition with a path, a serializer and a deserializer per method; protobuf-es gives us
 * the descriptors, so we derive the definition from them (toBinary/fromBinary) instead of loading .proto files at run
 * time. Implementations have the same shape as connect-node's `ServiceImpl`, so one class can be served by grpc-js
 * here and by a Connect router (in-memory tests, app-service) alike.
 */

/**
 * Observes every finished call: the basis of the grpc_server_* metrics. The duration runs from the receipt of the
 * call's request headers (see callStartedAt) to its status.
 */
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

/** Wraps serialized bytes in a Buffer without copying them. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

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
      requestSerialize: (message: MessageShape<DescMessage>) => asBuffer(toBinary(method.input, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
      responseSerialize: (message: MessageShape<DescMessage>) => asBuffer(toBinary(method.output, message)),
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

function headersToMetadata(headers: Headers | undefined): grpc.Metadata | undefined {
  let metadata: grpc.Metadata | undefined;
  headers?.forEach((value, key) => {
    metadata ??= new grpc.Metadata();
    metadata.set(key, value);
  });
  return metadata;
}

function deadlineAt(call: SurfaceCall): number | undefined {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? at : undefined;
}

/**
 * The HandlerContext of one grpc-js call, built lazily: connect's `createHandlerContext` allocates four Headers,
 * an AbortController linked to the shutdown signal and a deadline timer on every call, which costs more than a small
 * model's inference. Here each of those is created only when the handler first touches it, and `finish()` releases
 * the timer and the shutdown listener when the call ends (connect's context, never aborted, kept both alive).
 */
class GrpcHandlerContext implements HandlerContext {
  readonly requestMethod = REQUEST_METHOD;
  readonly protocolName = "grpc";
  #requestHeader: Headers | undefined;
  #responseHeader: Headers | undefined;
  #responseTrailer: Headers | undefined;
  #values: ContextValues | undefined;
  #abort: AbortController | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #onShutdown: (() => void) | undefined;
  readonly #deadline: number | undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    readonly url: string,
    private readonly call: SurfaceCall,
    private readonly shutdownSignal: AbortSignal | undefined,
    /** When the call's request headers were received (process.hrtime.bigint()); see callStartedAt. */
    readonly receivedAt: bigint,
  ) {
    this.#deadline = deadlineAt(call);
  }

  /** Whether the call has ended without the handler: cancelled by the client, or its deadline answered. */
  get cancelled(): boolean {
    return this.call.cancelled;
  }

  readonly timeoutMs = (): number | undefined =>
    this.#deadline === undefined ? undefined : this.#deadline - Date.now();

  get requestHeader(): Headers {
    this.#requestHeader ??= metadataToHeaders(this.call.metadata);
    return this.#requestHeader;
  }

  get responseHeader(): Headers {
    this.#responseHeader ??= new Headers();
    return this.#responseHeader;
  }

  get responseTrailer(): Headers {
    this.#responseTrailer ??= new Headers();
    return this.#responseTrailer;
  }

  get values(): ContextValues {
    this.#values ??= createContextValues();
    return this.#values;
  }

  /** Aborted when the client cancels, the deadline passes, or the server shuts down. */
  get signal(): AbortSignal {
    if (this.#abort) {
      return this.#abort.signal;
    }
    const controller = new AbortController();
    this.#abort = controller;
    const abort = (reason: ConnectError) => {
      if (!controller.signal.aborted) {
        controller.abort(reason);
      }
      this.finish();
    };
    if (this.call.cancelled) {
      abort(new ConnectError("the call was cancelled", Code.Canceled));
      return controller.signal;
    }
    this.call.once("cancelled", () => abort(new ConnectError("the call was cancelled", Code.Canceled)));
    if (this.#deadline !== undefined) {
      const left = this.#deadline - Date.now();
      const timedOut = () => abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
      if (left <= 0) {
        timedOut();
        return controller.signal;
      }
      this.#timer = setTimeout(timedOut, left);
      this.#timer.unref?.();
    }
    const shutdown = this.shutdownSignal;
    if (shutdown) {
      if (shutdown.aborted) {
        abort(new ConnectError("the server is shutting down", Code.Unavailable));
        return controller.signal;
      }
      this.#onShutdown = () => abort(new ConnectError("the server is shutting down", Code.Unavailable));
      shutdown.addEventListener("abort", this.#onShutdown, { once: true });
    }
    return controller.signal;
  }

  /** Response headers set by the handler, if any, as grpc-js metadata. */
  takeResponseHeader(): grpc.Metadata | undefined {
    return headersToMetadata(this.#responseHeader);
  }

  /** Response trailers set by the handler, if any, as grpc-js metadata. */
  takeResponseTrailer(): grpc.Metadata | undefined {
    return headersToMetadata(this.#responseTrailer);
  }

  /** Releases the deadline timer and the shutdown listener; called when the call ends. */
  finish(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#onShutdown) {
      this.shutdownSignal?.removeEventListener("abort", this.#onShutdown);
      this.#onShutdown = undefined;
    }
  }
}

/**
 * When the call began, as process.hrtime.bigint(): for a call served by the grpc-js adapter on a server made by
 * createGrpcServer, when its request headers were received — before its message was read and deserialized and
 * before the handler ran, so a latency measured from here includes the time the call waited inside the process
 * (a busy event loop, a slow upload). Time before the process read the call from its socket (kernel buffers, a
 * process stopped with SIGSTOP or blocked in a long synchronous run) cannot be seen by any server. For other
 * contexts (a Connect router), the time of this call, i.e. the handler's start.
 */
export function callStartedAt(context: HandlerContext): bigint {
  return context instanceof GrpcHandlerContext ? context.receivedAt : process.hrtime.bigint();
}

/**
 * Whether the caller can no longer receive this call's answer: the client cancelled it (RST_STREAM) or grpc-js
 * already answered DEADLINE_EXCEEDED. Cheap for grpc-js calls (no AbortSignal is created).
 */
export function callCancelled(context: HandlerContext): boolean {
  return context instanceof GrpcHandlerContext ? context.cancelled : context.signal.aborted;
}

/** When a grpc-js call began: its headers' receipt if stamped (createGrpcServer), else now (the handler's start). */
function startOf(call: SurfaceCall): bigint {
  return callReceivedAt(call.metadata) ?? process.hrtime.bigint();
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
  const shutdownSignal = options.shutdownSignal;
  for (const method of service.methods) {
    const fn = (impl as Record<string, unknown>)[method.localName] as
      | ((req: unknown, ctx: HandlerContext) => unknown)
      | undefined;
    const path = `/${service.typeName}/${method.name}`;
    const observer = options.observer;
    const observe = (code: grpc.status, started: bigint) =>
      observer?.(method, code, Number(process.hrtime.bigint() - started) / 1e9);
    const unimplemented = (): ConnectError =>
      new ConnectError(`${path} is not implemented by this server`, Code.Unimplemented);

    if (method.methodKind === "unary") {
      const unary: grpc.handleUnaryCall<MessageShape<DescMessage>, MessageShape<DescMessage>> = (
        call,
        callback,
      ) => {
        const started = startOf(call);
        let context: GrpcHandlerContext | undefined;
        const fail = (error: unknown) => {
          context?.finish();
          const connectError = toConnectError(error, options.logger, path);
          observe(grpcStatusOf(connectError), started);
          callback(errorToStatus(connectError));
        };
        if (!fn) {
          fail(unimplemented());
          return;
        }
        context = new GrpcHandlerContext(service, method, path, call, shutdownSignal, started);
        const ctx = context;
        let result: unknown;
        try {
          result = fn.call(impl, call.request, ctx);
        } catch (error) {
          fail(error);
          return;
        }
        const succeed = (init: unknown) => {
          ctx.finish();
          const header = ctx.takeResponseHeader();
          if (header) {
            call.sendMetadata(header);
          }
          const message = create(method.output, init as MessageInitShape<DescMessage>);
          observe(grpc.status.OK, started);
          callback(null, message, ctx.takeResponseTrailer());
        };
        if (result instanceof Promise) {
          result.then(succeed, fail);
        } else {
          succeed(result);
        }
      };
      handlers[method.localName] = unary;
    } else if (method.methodKind === "server_streaming") {
      const streaming: grpc.handleServerStreamingCall<
        MessageShape<DescMessage>,
        MessageShape<DescMessage>
      > = (call) => {
        const started = startOf(call);
        let context: GrpcHandlerContext | undefined;
        const fail = (error: unknown) => {
          context?.finish();
          const connectError = toConnectError(error, options.logger, path);
          observe(grpcStatusOf(connectError), started);
          // Not destroy(): a destroyed stream never runs _final, so grpc-js would never send the status and the
          // client would wait forever. Emitting "error" makes grpc-js end the call with this status.
          call.emit("error", Object.assign(new Error(connectError.rawMessage), errorToStatus(connectError)));
        };
        if (!fn) {
          fail(unimplemented());
          return;
        }
        context = new GrpcHandlerContext(service, method, path, call, shutdownSignal, started);
        const ctx = context;
        void (async () => {
          try {
            const iterable = fn.call(impl, call.request, ctx) as AsyncIterable<MessageInitShape<DescMessage>>;
            let headerSent = false;
            for await (const init of iterable) {
              if (call.cancelled) {
                break;
              }
              if (!headerSent) {
                const header = ctx.takeResponseHeader();
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
            ctx.finish();
            observe(call.cancelled ? grpc.status.CANCELLED : grpc.status.OK, started);
            call.end(ctx.takeResponseTrailer());
          } catch (error) {
            if (call.cancelled) {
              ctx.finish();
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
