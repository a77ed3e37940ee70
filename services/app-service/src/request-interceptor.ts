import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  CLIENT_REQUEST_ID_HEADER,
  clientRequestIdProblem,
  grpcCodeName,
  type Logger,
  newRequestId,
  REQUEST_ID_HEADER,
} from "@shadowmesh/common";
import type { AppMetrics } from "./metrics.js";
import { MALFORMED_HEADER } from "./rpc-handler.js";

/**
 * Runs around every RPC app-service handles:
 * - the join key: the edge (server.ts) has put a fresh UUIDv7 into `x-request-id` and the caller's own id into
 *   `x-client-request-id`; a caller id that is not 1–128 printable ASCII characters is refused with
 *   INVALID_ARGUMENT; both ids are logged (the edge returns them as response headers, on errors too);
 * - a request message the router found malformed is refused with INVALID_ARGUMENT (rpc-handler.ts);
 * - counts the call (requests by method and code, in progress, latency summary and histogram);
 * - makes sure no unexpected error leaks: anything that is not a ConnectError is logged with its request id and
 *   answered with a generic INTERNAL, without a message or a stack trace from inside.
 */
/** gRPC's OK; Connect's Code enum has no member for success. */
const OK = 0;

export function createRequestInterceptor(metrics: AppMetrics, logger: Logger): Interceptor {
  return (next) => async (req) => {
    const labels = { service: req.service.typeName, method: req.method.name };
    // The edge always sets the join key; the fallback only matters if this interceptor is used elsewhere.
    const requestId = req.header.get(REQUEST_ID_HEADER) ?? newRequestId();
    req.header.set(REQUEST_ID_HEADER, requestId);
    const callerId = req.header.get(CLIENT_REQUEST_ID_HEADER);
    const callerIdProblem = callerId === null ? undefined : clientRequestIdProblem(callerId);
    const clientRequestId = callerId !== null && callerIdProblem === undefined ? callerId : undefined;
    if (callerIdProblem !== undefined) {
      req.header.delete(CLIENT_REQUEST_ID_HEADER);
    }
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
          {
            requestId,
            clientRequestId,
            method: req.method.name,
            code: grpcCodeName(code),
            ms: seconds * 1000,
          },
          "rpc failed",
        );
      } else {
        logger.debug({ requestId, clientRequestId, method: req.method.name, ms: seconds * 1000 }, "rpc");
      }
    };
    const publicError = (error: unknown): ConnectError => {
      let connectError: ConnectError;
      if (error instanceof ConnectError) {
        connectError = error;
      } else {
        logger.error({ err: error, requestId, clientRequestId, method: req.method.name }, "unexpected error");
        connectError = new ConnectError("internal error", Code.Internal);
      }
      // The ids are not added to the error's metadata: the edge (server.ts) has already set them as response
      // headers, which every protocol sends with errors too (gRPC-web would otherwise repeat them in the trailer).
      return connectError;
    };

    let res: Awaited<ReturnType<typeof next>>;
    try {
      if (callerIdProblem !== undefined) {
        throw new ConnectError(
          `x-request-id ${callerIdProblem} (it is kept as x-client-request-id for your own correlation; the join key is made here)`,
          Code.InvalidArgument,
        );
      }
      const malformed = req.header.get(MALFORMED_HEADER);
      if (malformed !== null) {
        throw new ConnectError(malformed, Code.InvalidArgument);
      }
      res = await next(req);
    } catch (error) {
      const connectError = publicError(error);
      finish(connectError.code);
      throw connectError;
    }
    res.header.set(REQUEST_ID_HEADER, requestId);
    if (clientRequestId !== undefined) {
      res.header.set(CLIENT_REQUEST_ID_HEADER, clientRequestId);
    }
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
