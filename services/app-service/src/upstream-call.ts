import type { DescMethod } from "@bufbuild/protobuf";
import { type CallOptions, Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  CLIENT_REQUEST_ID_HEADER,
  grpcCodeName,
  type Logger,
  newRequestId,
  REQUEST_ID_HEADER,
  retryable,
  sleep,
} from "@shadowmesh/common";
import type { AppMetrics } from "./metrics.js";
import { mapUpstreamError, type Upstream } from "./upstream-errors.js";

/** The ids of the call being handled. */
export interface CallIds {
  /** The join key app-service made for this call (`x-request-id` downstream and in the response). */
  requestId: string;
  /** The caller's own `x-request-id`, when it sent a valid one (`x-client-request-id` downstream). */
  clientRequestId?: string;
}

/** The ids of the call being handled: set by the edge and the request interceptor (made here if they did not run). */
export function callIdsOf(context: HandlerContext): CallIds {
  let requestId = context.requestHeader.get(REQUEST_ID_HEADER);
  if (requestId === null) {
    requestId = newRequestId();
    context.requestHeader.set(REQUEST_ID_HEADER, requestId);
  }
  const clientRequestId = context.requestHeader.get(CLIENT_REQUEST_ID_HEADER);
  return clientRequestId === null ? { requestId } : { requestId, clientRequestId };
}

/** The metadata that carries the ids to model-service and metrics-service. */
export function idHeaders(ids: CallIds): Record<string, string> {
  return ids.clientRequestId === undefined
    ? { [REQUEST_ID_HEADER]: ids.requestId }
    : { [REQUEST_ID_HEADER]: ids.requestId, [CLIENT_REQUEST_ID_HEADER]: ids.clientRequestId };
}

/** The absolute deadline of an upstream call: our configured deadline, or the client's if that is sooner. */
export function deadlineOf(context: HandlerContext, deadlineMs: number): number {
  const clientMs = context.timeoutMs();
  return Date.now() + (clientMs === undefined ? deadlineMs : Math.min(clientMs, deadlineMs));
}

/** What is left of the time until `deadline` (at least 1 ms: a connect client takes 0 as "no time at all"). */
export function timeLeftMs(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}

/** Refuses a call whose deadline has already passed (`connect-timeout-ms: 0`, `grpc-timeout: 0m`). */
export function assertTimeLeft(deadline: number): void {
  if (Date.now() >= deadline) {
    throw new ConnectError("the call's deadline passed before it could be forwarded", Code.DeadlineExceeded);
  }
}

export interface UpstreamCallerOptions {
  upstream: Upstream;
  metrics: AppMetrics;
  logger: Logger;
  /** A retry after UNAVAILABLE waits a random time up to this many ms. */
  retryJitterMs: number;
  /** Random number in [0, 1); injectable for tests. */
  random?: () => number;
}

/**
 * Calls one upstream with the request id and deadline, counts the outcome, retries a call once after UNAVAILABLE
 * when its method's declared idempotency allows it (`retryable`; with jitter, and only while the deadline leaves
 * room), and maps failures to the errors we return. `retryable` (common) reads the level from the protobuf-es
 * descriptor: NO_SIDE_EFFECTS and IDEMPOTENT may be sent twice; a method that declares nothing never is.
 */
export class UpstreamCaller {
  readonly #options: UpstreamCallerOptions;
  readonly #random: () => number;

  constructor(options: UpstreamCallerOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
  }

  async unary<T>(
    method: DescMethod,
    call: (options: CallOptions) => Promise<T>,
    ids: CallIds,
    deadline: number,
    signal: AbortSignal,
  ): Promise<T> {
    const { upstream, metrics, retryJitterMs } = this.#options;
    const requestId = ids.requestId;
    const name = method.name;
    assertTimeLeft(deadline);
    const headers = idHeaders(ids);
    // The deadline is absolute: a retry gets what is left of it, not a fresh one.
    const attempt = () =>
      this.#counted(name, () => call({ headers, timeoutMs: timeLeftMs(deadline), signal }));
    try {
      return await attempt();
    } catch (error) {
      const code = ConnectError.from(error).code;
      // The handler's own deadline (the client's timeout) aborted the call: that is DEADLINE_EXCEEDED, not CANCELED.
      if (signal.aborted && ConnectError.from(signal.reason).code === Code.DeadlineExceeded) {
        throw new ConnectError(`${upstream} did not answer in time`, Code.DeadlineExceeded);
      }
      const pause = Math.round(this.#random() * retryJitterMs);
      // Retry once, only a method whose contract allows it, and only when the retry can still finish inside the
      // deadline in a useful way.
      if (
        code === Code.Unavailable &&
        retryable(method) &&
        !signal.aborted &&
        Date.now() + pause < deadline - 1
      ) {
        metrics.upstreamRetries.inc({ upstream, method: name });
        await sleep(pause);
        try {
          return await attempt();
        } catch (retryError) {
          throw mapUpstreamError(retryError, upstream, this.#options.logger, {
            requestId,
            clientRequestId: ids.clientRequestId,
            method: name,
          });
        }
      }
      throw mapUpstreamError(error, upstream, this.#options.logger, {
        requestId,
        clientRequestId: ids.clientRequestId,
        method: name,
      });
    }
  }

  /** A server stream from the upstream, with failures mapped; ends when `signal` aborts. */
  async *stream<T>(
    method: Pick<DescMethod, "name">,
    call: (options: CallOptions) => AsyncIterable<T>,
    ids: CallIds,
    signal: AbortSignal,
  ): AsyncIterable<T> {
    const { upstream, metrics } = this.#options;
    const requestId = ids.requestId;
    const name = method.name;
    let code = 0; // OK
    try {
      for await (const message of call({ headers: idHeaders(ids), signal })) {
        yield message;
      }
    } catch (error) {
      code = ConnectError.from(error).code;
      throw mapUpstreamError(error, upstream, this.#options.logger, {
        requestId,
        clientRequestId: ids.clientRequestId,
        method: name,
      });
    } finally {
      metrics.upstreamCalls.inc({ upstream, method: name, code: grpcCodeName(code) });
    }
  }

  async #counted<T>(method: string, fn: () => Promise<T>): Promise<T> {
    const { upstream, metrics } = this.#options;
    try {
      const result = await fn();
      metrics.upstreamCalls.inc({ upstream, method, code: "OK" });
      return result;
    } catch (error) {
      metrics.upstreamCalls.inc({ upstream, method, code: grpcCodeName(ConnectError.from(error).code) });
      throw error;
    }
  }
}
