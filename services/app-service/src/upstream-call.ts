import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  type GrpcCallOptions,
  grpcCodeName,
  type Logger,
  REQUEST_ID_HEADER,
  requestIdFrom,
  sleep,
} from "@shadowmesh/common";
import type { AppMetrics } from "./metrics.js";
import { mapUpstreamError, type Upstream } from "./upstream-errors.js";

/** The request id of the call being handled: set by the request interceptor, or made here if it did not run. */
export function requestIdOf(context: HandlerContext): string {
  const id = requestIdFrom(context.requestHeader.get(REQUEST_ID_HEADER));
  context.requestHeader.set(REQUEST_ID_HEADER, id);
  return id;
}

/** The absolute deadline of an upstream call: our configured deadline, or the client's if that is sooner. */
export function deadlineOf(context: HandlerContext, deadlineMs: number): number {
  const clientMs = context.timeoutMs();
  return Date.now() + (clientMs === undefined ? deadlineMs : Math.min(clientMs, deadlineMs));
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
 * Calls one upstream with the request id and deadline, counts the outcome, retries an idempotent call once after
 * UNAVAILABLE (with jitter, and only while the deadline leaves room), and maps failures to the errors we return.
 */
export class UpstreamCaller {
  readonly #options: UpstreamCallerOptions;
  readonly #random: () => number;

  constructor(options: UpstreamCallerOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
  }

  async unary<T>(
    method: string,
    call: (options: GrpcCallOptions) => Promise<T>,
    requestId: string,
    deadline: number,
    signal: AbortSignal,
  ): Promise<T> {
    const { upstream, metrics, retryJitterMs } = this.#options;
    const options: GrpcCallOptions = { headers: { [REQUEST_ID_HEADER]: requestId }, deadline, signal };
    try {
      return await this.#counted(method, () => call(options));
    } catch (error) {
      const code = ConnectError.from(error).code;
      const pause = Math.round(this.#random() * retryJitterMs);
      // Retry once, and only when the retry can still finish inside the deadline in a useful way.
      if (code === Code.Unavailable && !signal.aborted && Date.now() + pause < deadline - 1) {
        metrics.upstreamRetries.inc({ upstream, method });
        await sleep(pause);
        try {
          return await this.#counted(method, () => call(options));
        } catch (retryError) {
          throw mapUpstreamError(retryError, upstream, this.#options.logger, { requestId, method });
        }
      }
      throw mapUpstreamError(error, upstream, this.#options.logger, { requestId, method });
    }
  }

  /** A server stream from the upstream, with failures mapped; ends when `signal` aborts. */
  async *stream<T>(
    method: string,
    call: (options: GrpcCallOptions) => AsyncIterable<T>,
    requestId: string,
    signal: AbortSignal,
  ): AsyncIterable<T> {
    const { upstream, metrics } = this.#options;
    let code = 0; // OK
    try {
      for await (const message of call({ headers: { [REQUEST_ID_HEADER]: requestId }, signal })) {
        yield message;
      }
    } catch (error) {
      code = ConnectError.from(error).code;
      throw mapUpstreamError(error, upstream, this.#options.logger, { requestId, method });
    } finally {
      metrics.upstreamCalls.inc({ upstream, method, code: grpcCodeName(code) });
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
