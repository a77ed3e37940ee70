import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { grpcCodeName, type Logger, REQUEST_ID_HEADER, requestIdFrom } from "@shadowmesh/common";
import type { AppMetrics } from "./metrics.js";

/**
 * Runs around every RPC app-service handles:
 * - takes the caller's `x-request-id` (if well-formed) or makes one, hands it to the handler through the request
 *   headers, and returns it in the response headers — on errors too (error metadata);
 * - counts the call (requests by method and code, in progress, latency summary and histogram);
 * - makes sure no unexpected error leaks: anything that is not a ConnectError is logged with its request id and
 *   answered with a generic INTERNAL, without a message or a stack trace from inside.
 */
/** gRPC's OK; Connect's Code enum has no member for success. */
const OK = 0;

export function createRequestInterceptor(metrics: AppMetrics, logger: Logger): Interceptor {
  return (next) => async (req) => {
    const labels = { service: req.service.typeName, method: req.method.name };
    const requestId = requestIdFrom(req.header.get(REQUEST_ID_HEADER));
    req.header.set(REQUEST_ID_HEADER, requestId);
    metrics.inProgress.inc(labels);
    const started = process.hrtime.bigint();
    let finished = false;
    const finish = (code: number) => {
      if (finished) {
        return;
      }
      finished = true;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.inProgress.dec(labels);
      metrics.requests.inc({ ...labels, code: grpcCodeName(code) });
      metrics.latency.observe(labels, seconds);
      metrics.duration.observe(labels, seconds);
      if (code !== OK) {
        logger.debug(
          { requestId, method: req.method.name, code: grpcCodeName(code), ms: seconds * 1000 },
          "rpc failed",
        );
      } else {
        logger.debug({ requestId, method: req.method.name, ms: seconds * 1000 }, "rpc");
      }
    };
    const publicError = (error: unknown): ConnectError => {
      let connectError: ConnectError;
      if (error instanceof ConnectError) {
        connectError = error;
      } else {
        logger.error({ err: error, requestId, method: req.method.name }, "unexpected error");
        connectError = new ConnectError("internal error", Code.Internal);
      }
      connectError.metadata.set(REQUEST_ID_HEADER, requestId);
      return connectError;
    };

    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (error) {
      const connectError = publicError(error);
      finish(connectError.code);
      throw connectError;
    }
    res.header.set(REQUEST_ID_HEADER, requestId);
    if (!res.stream) {
      finish(OK);
      return res;
    }
    const inner = res.message;
    async function* observed() {
      // A stream that stops because the client went away ends here without an error: count it as CANCELED.
      let code: number = Code.Canceled;
      try {
        yield* inner;
        code = OK;
      } catch (error) {
        const connectError = publicError(error);
        code = connectError.code;
        throw connectError;
      } finally {
        finish(code);
      }
    }
    return { ...res, message: observed() };
  };
}
