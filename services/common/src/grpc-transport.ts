import {
  create,
  type DescMessage,
  type DescMethod,
  type DescMethodStreaming,
  type DescMethodUnary,
  type DescService,
  isMessage,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextKey,
  createContextValues,
  decodeBinaryHeader,
  encodeBinaryHeader,
  type Interceptor,
  type ServiceImpl,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { runStreamingCall, type UniversalHandlerOptions } from "@connectrpc/connect/protocol";
import * as grpc from "@grpc/grpc-js";
import { type AddServiceOptions, addService, createServiceDefinition } from "./grpc-adapter.js";

/**
 * connect's types at the edges, grpc-js on the wire (docs/architecture.md, "Why grpc-js inside").
 *
 * `createGrpcJsTransport` is a connect `Transport` over a grpc-js channel: clients are connect's own
 * `createClient(Service, transport)`, so code and tests can swap it for `createRouterTransport` (in memory), while
 * the hop between services keeps grpc-js's speed. `registerRoutes` serves a connect-style routes function
 * (`(router) => router.service(...)`) on a grpc-js server, so one routes function can be given to connect-node's
 * adapter and to a grpc-js server alike.
 */

/**
 * Reconnect backoff of every channel (README "Reliability"). grpc-js's defaults — first retry after 1 s, each next
 * one 1.6 times later, up to 120 s — leave a caller blind for up to two minutes after a peer that was down for a
 * while comes back (a shadow down for 90 s got its first mirrored call 61 s after it was ready). Here the first retry
 * comes after 100 ms and no pause is longer than 1 s (± 20 % jitter), so mirror, report and upstream channels
 * reconnect within about a second of the peer listening again. A peer that is down costs one refused TCP connect
 * per second per channel. Name re-resolution (DNS names in a cluster) is allowed every 2 s instead of every 30 s.
 * Callers' own options win.
 */
export const RECONNECT_OPTIONS = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
  "grpc.dns_min_time_between_resolutions_ms": 2000,
} as const satisfies grpc.ChannelOptions;

export interface GrpcJsTransportOptions {
  /** host:port (plaintext h2c; TLS is the mesh's job). */
  address: string;
  /** grpc-js channel options; RECONNECT_OPTIONS unless these say otherwise. */
  channelOptions?: grpc.ChannelOptions;
  /** connect interceptors (e.g. retryIdempotent), outermost first. */
  interceptors?: Interceptor[];
}

/** A connect Transport on one grpc-js channel. */
export type GrpcJsTransport = Transport & {
  /** Closes the channel; calls in flight are cancelled. */
  close(): void;
  /** The grpc-js client (channel state, waitForReady). */
  readonly raw: grpc.Client;
};

/**
 * The absolute deadline of a call (ms since the epoch), for interceptors: set by createGrpcJsTransport from the
 * call's timeoutMs before the interceptors run (connect's request does not carry the timeout).
 */
export const callDeadline = createContextKey<number | undefined>(undefined, { description: "call deadline" });

/** What connect passes as request headers (the DOM type HeadersInit, which this project's lib settings lack). */
type HeaderInit = ConstructorParameters<typeof Headers>[0];

/** Request/response headers that are the protocol's, never metadata. */
const RESERVED = new Set([
  "content-type",
  "te",
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding",
  "user-agent",
]);

/** A `-bin` header's value as bytes: base64 as connect encodes it; anything else as its own bytes. */
function binaryValue(value: string): Buffer {
  try {
    return Buffer.from(decodeBinaryHeader(value));
  } catch {
    return Buffer.from(value);
  }
}

function addHeader(metadata: grpc.Metadata, key: string, value: string): void {
  if (RESERVED.has(key)) return;
  if (key.endsWith("-bin")) {
    for (const part of value.split(",")) metadata.add(key, binaryValue(part.trim()));
  } else {
    metadata.add(key, value);
  }
}

function headersToMetadata(header: HeaderInit | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (header === undefined) return metadata;
  if (header instanceof Headers) {
    // Read in place: no copy of the caller's (or an interceptor's) Headers per call.
    header.forEach((value, key) => {
      addHeader(metadata, key, value);
    });
    return metadata;
  }
  if (Array.isArray(header)) {
    new Headers(header).forEach((value, key) => {
      addHeader(metadata, key, value);
    });
    return metadata;
  }
  // A plain object (what callers pass): no Headers object and no entries array per call.
  for (const key in header) {
    const value = header[key];
    if (value === undefined) continue;
    const name = key.toLowerCase();
    if (typeof value === "string") {
      addHeader(metadata, name, value);
    } else {
      for (const one of value) addHeader(metadata, name, one);
    }
  }
  return metadata;
}

function metadataInto(metadata: grpc.Metadata | undefined, headers: Headers): Headers {
  if (!metadata) return headers;
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const value of values as (string | Buffer)[]) {
      headers.append(key, typeof value === "string" ? value : encodeBinaryHeader(value));
    }
  }
  return headers;
}

/** A grpc-js status (or error) as a ConnectError with the same code, message and metadata (trailers). */
export function connectErrorOf(status: Partial<grpc.StatusObject> & { message?: string }): ConnectError {
  const code = (status.code ?? grpc.status.UNKNOWN) as number as Code;
  return new ConnectError(
    status.details || status.message || "",
    code,
    metadataInto(status.metadata, new Headers()),
  );
}

/** The signal of a call whose caller gave none. */
const NEVER_ABORTED = new AbortController().signal;

/** connect's applyInterceptors: the first interceptor is the outermost. */
function applyInterceptors<
  T extends (req: UnaryRequest | StreamRequest) => Promise<UnaryResponse | StreamResponse>,
>(next: T, interceptors: readonly Interceptor[]): T {
  let chain = next as (req: UnaryRequest | StreamRequest) => Promise<UnaryResponse | StreamResponse>;
  for (const interceptor of [...interceptors].reverse()) {
    chain = interceptor(chain);
  }
  return chain as T;
}

function abortError(signal: AbortSignal): ConnectError {
  return signal.reason instanceof ConnectError
    ? signal.reason
    : ConnectError.from(signal.reason ?? new Error("the call was aborted"), Code.Canceled);
}

function messageOf<I extends DescMessage>(schema: I, input: MessageInitShape<I>): MessageShape<I> {
  return isMessage(input, schema) ? input : create(schema, input);
}

/**
 * A unary response whose header and trailer become Headers only when read (onHeader, onTrailer): most callers never
 * read them. Getters on a class, not in an object literal: V8 defines a literal's accessors one by one at run time
 * (about 2.5 µs per response here, more than all of this file's other per-call work together).
 */
class LazyUnaryResponse<I extends DescMessage, O extends DescMessage> implements UnaryResponse<I, O> {
  readonly stream = false;
  readonly service: DescService;
  /** Set by the call's "status" event, which grpc-js emits right after the callback, in the same tick. */
  trailerMetadata: grpc.Metadata | undefined;
  #header: Headers | undefined;
  #trailer: Headers | undefined;
  constructor(
    readonly method: DescMethodUnary<I, O>,
    readonly message: MessageShape<O>,
    private readonly headerMetadata: grpc.Metadata | undefined,
  ) {
    this.service = method.parent;
  }
  get header(): Headers {
    this.#header ??= metadataInto(this.headerMetadata, new Headers());
    return this.#header;
  }
  get trailer(): Headers {
    this.#trailer ??= metadataInto(this.trailerMetadata, new Headers());
    return this.#trailer;
  }
}

/**
 * The response as interceptors get it: a plain object (header and trailer own properties), so that one that copies
 * it (`{ ...response, message }`) keeps them. Run after the status event, so the trailer is there.
 */
function plainResponse(response: UnaryResponse): UnaryResponse {
  return {
    stream: false,
    service: response.service,
    method: response.method,
    header: response.header,
    message: response.message,
    trailer: response.trailer,
  };
}

/** Creates a connect Transport that makes its calls over a grpc-js channel to `address`. */
export function createGrpcJsTransport(options: GrpcJsTransportOptions): GrpcJsTransport {
  const raw = new grpc.Client(options.address, grpc.credentials.createInsecure(), {
    ...RECONNECT_OPTIONS,
    ...options.channelOptions,
  });
  const interceptors = options.interceptors ?? [];
  const definitions = new WeakMap<DescService, grpc.ServiceDefinition>();
  /** Per method, made on its first call: the grpc-js method definition (path, serializers) and connect's url. */
  const methods = new WeakMap<
    DescMethod,
    { definition: grpc.MethodDefinition<unknown, unknown>; url: string }
  >();
  const methodOf = (method: DescMethod) => {
    let known = methods.get(method);
    if (!known) {
      let definition = definitions.get(method.parent);
      if (!definition) {
        definition = createServiceDefinition(method.parent);
        definitions.set(method.parent, definition);
      }
      known = {
        definition: definition[method.localName] as grpc.MethodDefinition<unknown, unknown>,
        url: `http://${options.address}/${method.parent.typeName}/${method.name}`,
      };
      methods.set(method, known);
    }
    return known;
  };
  const definitionOf = (method: DescMethod) => methodOf(method).definition;
  const callOptions = (deadline: number | undefined): grpc.CallOptions =>
    deadline === undefined ? {} : { deadline };

  /**
   * One unary call on the wire. Per call: one Metadata, one call-options object, the callback and two listeners on
   * grpc-js's call ("metadata", "status": `on`, not `once`, as the call emits each at most once), and an "abort"
   * listener only when the caller gave a signal (removed in the callback, which grpc-js calls exactly once).
   */
  const unaryCall = <I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    header: HeaderInit | undefined,
    message: MessageShape<I>,
    deadline: number | undefined,
  ): Promise<UnaryResponse<I, O>> =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const definition = definitionOf(method);
      let headerMetadata: grpc.Metadata | undefined;
      let answer: LazyUnaryResponse<I, O> | undefined;
      let abort: (() => void) | undefined;
      const call = raw.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        message,
        headersToMetadata(header),
        callOptions(deadline),
        (error, response) => {
          if (abort) signal?.removeEventListener("abort", abort);
          if (error) {
            reject(signal?.aborted ? abortError(signal) : connectErrorOf(error));
            return;
          }
          answer = new LazyUnaryResponse<I, O>(method, response as MessageShape<O>, headerMetadata);
          resolve(answer);
        },
      );
      if (signal && signal !== NEVER_ABORTED) {
        abort = () => call.cancel();
        signal.addEventListener("abort", abort, { once: true });
      }
      call.on("metadata", (metadata) => {
        headerMetadata = metadata;
      });
      // grpc-js emits "status" right after the callback, in the same tick: the trailer is there before anyone
      // awaiting the response runs.
      call.on("status", (status) => {
        if (answer) answer.trailerMetadata = status.metadata;
      });
    });

  /** One server-streaming call on the wire; resolves once the response headers (or the status) arrive. */
  const streamCall = async <I extends DescMessage, O extends DescMessage>(
    req: Pick<StreamRequest<I, O>, "method" | "header" | "message"> & { signal: AbortSignal | undefined },
    deadline: number | undefined,
  ): Promise<StreamResponse<I, O>> => {
    const { method, signal } = req;
    if (method.methodKind !== "server_streaming") {
      throw new ConnectError(
        `${method.parent.typeName}/${method.name}: ${method.methodKind} calls are not supported by the grpc-js transport`,
        Code.Unimplemented,
      );
    }
    let input: MessageShape<I> | undefined;
    for await (const message of req.message) {
      if (input !== undefined) {
        throw new ConnectError("a server-streaming call takes one request message", Code.InvalidArgument);
      }
      input = message;
    }
    if (input === undefined) {
      throw new ConnectError("a server-streaming call needs a request message", Code.InvalidArgument);
    }
    if (signal?.aborted) throw abortError(signal);
    const definition = definitionOf(method);
    const call = raw.makeServerStreamRequest(
      definition.path,
      definition.requestSerialize,
      definition.responseDeserialize,
      input,
      headersToMetadata(req.header),
      callOptions(deadline),
    );
    const header = new Headers();
    const trailer = new Headers();
    let failure: ConnectError | undefined;
    const abort = () => call.cancel();
    signal?.addEventListener("abort", abort, { once: true });
    const ended = new Promise<void>((resolve) => {
      call.once("status", (status: grpc.StatusObject) => {
        metadataInto(status.metadata, trailer);
        signal?.removeEventListener("abort", abort);
        resolve();
      });
    });
    call.on("error", (error: grpc.ServiceError) => {
      failure ??= signal?.aborted ? abortError(signal) : connectErrorOf(error);
    });
    await new Promise<void>((resolve) => {
      call.once("metadata", (metadata: grpc.Metadata) => {
        metadataInto(metadata, header);
        resolve();
      });
      void ended.then(resolve);
    });
    async function* messages(): AsyncGenerator<MessageShape<O>> {
      try {
        for await (const message of call) {
          yield message as MessageShape<O>;
        }
      } catch (error) {
        failure ??= signal?.aborted ? abortError(signal) : connectErrorOf(error as grpc.ServiceError);
      } finally {
        call.cancel();
      }
      await ended;
      if (failure) throw failure;
    }
    return { stream: true, service: method.parent, method, header, message: messages(), trailer };
  };

  const requestFields = (
    method: DescMethod,
    header: HeaderInit | undefined,
    values: ContextValues | undefined,
  ) => ({
    service: method.parent,
    requestMethod: "POST",
    url: methodOf(method).url,
    header: new Headers(header),
    contextValues: values ?? createContextValues(),
  });

  const unaryChain = applyInterceptors(
    (req: UnaryRequest | StreamRequest) =>
      req.stream
        ? Promise.reject(new ConnectError("a stream in the unary chain", Code.Internal))
        : unaryCall(
            req.method,
            req.signal,
            req.header,
            req.message,
            req.contextValues.get(callDeadline),
          ).then(plainResponse),
    interceptors,
  );

  const deadlineOf = (timeoutMs: number | undefined) =>
    timeoutMs !== undefined && timeoutMs > 0 ? Date.now() + timeoutMs : undefined;

  return {
    raw,
    close: () => raw.close(),

    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeaderInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const deadline = deadlineOf(timeoutMs);
      if (interceptors.length === 0) {
        // The hot path (a forwarded Predict): no AbortController, deadline timer or request object per call.
        return unaryCall<I, O>(method, signal, header, messageOf(method.input, input), deadline);
      }
      // The interceptor chain, without connect's runUnaryCall (an AbortController, a linked one and a deadline
      // timer per call): grpc-js enforces the deadline itself, and the caller's signal is passed through.
      const values = contextValues ?? createContextValues();
      values.set(callDeadline, deadline);
      const req: UnaryRequest<I, O> = {
        stream: false,
        method,
        message: messageOf(method.input, input),
        signal: signal ?? NEVER_ABORTED,
        ...requestFields(method, header, values),
      };
      return unaryChain(req as unknown as UnaryRequest) as unknown as Promise<UnaryResponse<I, O>>;
    },

    stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeaderInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      const deadline = deadlineOf(timeoutMs);
      const values = contextValues ?? createContextValues();
      values.set(callDeadline, deadline);
      return runStreamingCall<I, O>({
        req: { stream: true, method, message: input, ...requestFields(method, header, values) },
        next: (req) => streamCall(req, deadline),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        ...(signal ? { signal } : {}),
        interceptors,
      });
    },
  };
}

/** Whether the method's declared idempotency_level makes a second attempt safe. */
export function retryable(method: DescMethod): boolean {
  return (
    method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
    method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT
  );
}

export interface RetryOptions {
  /** Attempts in all, the first included (2 = one retry). */
  attempts: number;
  /** The pause before each retry is uniformly random in [0, jitterMs]. */
  jitterMs: number;
  /** Random source in [0, 1) (tests pass a fixed one). */
  random?: () => number;
  /** Called before each retry (metrics). */
  onRetry?: (method: DescMethod, attempt: number) => void;
}

/** The time left until the call's deadline in ms, if it has one (callDeadline, or the protocol's timeout header). */
function timeLeftMs(req: UnaryRequest, startedAt: number): number | undefined {
  const deadline = req.contextValues.get(callDeadline);
  if (deadline !== undefined) return deadline - Date.now();
  const grpcTimeout = req.header.get("grpc-timeout");
  if (grpcTimeout) {
    const match = /^(\d+)([HMSmun])$/.exec(grpcTimeout);
    if (match) {
      const unit = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 }[match[2] as "H"];
      return startedAt + Number(match[1]) * unit - Date.now();
    }
  }
  const connectTimeout = req.header.get("connect-timeout-ms");
  if (connectTimeout && /^\d+$/.test(connectTimeout)) {
    return startedAt + Number(connectTimeout) - Date.now();
  }
  return undefined;
}

/**
 * Retries from the contract: a unary call that fails with UNAVAILABLE is sent again — after a random pause of up to
 * `jitterMs` — only when its method declares `idempotency_level` NO_SIDE_EFFECTS or IDEMPOTENT, the caller has not
 * cancelled it, and its deadline leaves room for the pause and another attempt. Methods without a declared level
 * (IDEMPOTENCY_UNKNOWN) and streams are never retried.
 */
export function retryIdempotent(options: RetryOptions): Interceptor {
  const random = options.random ?? Math.random;
  const attempts = Math.max(1, Math.floor(options.attempts));
  return (next) => (req) => {
    if (req.stream || attempts === 1 || !retryable(req.method)) {
      return next(req);
    }
    const startedAt = Date.now();
    // No async function per call: a call that succeeds costs one `.catch`.
    const attempt = (n: number): ReturnType<typeof next> =>
      next(req).catch(async (error: unknown) => {
        const connectError = ConnectError.from(error);
        if (connectError.code !== Code.Unavailable || n >= attempts || req.signal.aborted) {
          throw error;
        }
        const pause = Math.round(random() * options.jitterMs);
        const left = timeLeftMs(req, startedAt);
        if (left !== undefined && left <= pause + 1) {
          throw error;
        }
        options.onRetry?.(req.method, n + 1);
        if (pause > 0) {
          await new Promise((resolve) => setTimeout(resolve, pause));
        }
        if (req.signal.aborted) {
          throw error;
        }
        return attempt(n + 1);
      });
    return attempt(1);
  };
}

/** connect's router, as far as a routes function uses it: `router.service(desc, impl, options?)`. */
export interface Router {
  service<T extends DescService>(
    service: T,
    implementation: Partial<ServiceImpl<T>>,
    options?: Partial<UniversalHandlerOptions>,
  ): Router;
}

/** A routes function, the same for connect-node's `connectNodeAdapter({ routes })` and for `registerRoutes`. */
export type Routes = (router: Router) => void;

/**
 * Serves a routes function on a grpc-js server (through addService: metrics observer, error logging, shutdown
 * signal from `options`). connect's per-service handler options do not apply to grpc-js and are ignored.
 */
export function registerRoutes(server: grpc.Server, routes: Routes, options: AddServiceOptions = {}): void {
  const router: Router = {
    service(service, implementation) {
      addService(server, service, implementation, options);
      return router;
    },
  };
  routes(router);
}
