import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "@shadowmesh/common";

/**
 * Maps an error from an upstream call (model-service or metrics-service, via grpc-js) to the error app-service
 * returns. The caller learns what went wrong in words it can act on; it never sees internal addresses, upstream
 * stack traces or connection details (grpc-js puts "connect ECONNREFUSED 10.0.0.7:50051" into UNAVAILABLE
 * messages), which are logged instead.
 *
 * - Errors the caller caused or can act on pass through with their message: INVALID_ARGUMENT (empty text, text too
 *   long — the message names the limit; a label that is not one of the model's), RESOURCE_EXHAUSTED, NOT_FOUND,
 *   FAILED_PRECONDITION (feedback disabled), OUT_OF_RANGE, ALREADY_EXISTS, PERMISSION_DENIED (feedback without a
 *   valid token).
 * - UNAVAILABLE and DEADLINE_EXCEEDED keep their code with a message of ours.
 * - UNIMPLEMENTED keeps its code (metrics-service may not implement a method yet; the web app says so).
 * - CANCELED stays CANCELED.
 * - Everything else (INTERNAL, UNKNOWN, DATA_LOSS, …) becomes a generic INTERNAL.
 */
const PASS_THROUGH = new Set<Code>([
  Code.InvalidArgument,
  Code.ResourceExhausted,
  Code.NotFound,
  Code.FailedPrecondition,
  Code.OutOfRange,
  Code.AlreadyExists,
  Code.PermissionDenied,
]);

export type Upstream = "model-service" | "metrics-service";

export function mapUpstreamError(
  error: unknown,
  upstream: Upstream,
  logger: Logger,
  context: { requestId: string; clientRequestId?: string | undefined; method: string },
): ConnectError {
  const upstreamError = ConnectError.from(error);
  const { code } = upstreamError;
  if (PASS_THROUGH.has(code)) {
    return new ConnectError(upstreamError.rawMessage, code);
  }
  const fields = { ...context, upstream, code: Code[code], err: upstreamError.rawMessage };
  switch (code) {
    case Code.Unavailable:
      logger.warn(fields, "upstream unavailable");
      return new ConnectError(`${upstream} is unavailable; try again shortly`, Code.Unavailable);
    case Code.DeadlineExceeded:
      logger.warn(fields, "upstream deadline exceeded");
      return new ConnectError(`${upstream} did not answer in time`, Code.DeadlineExceeded);
    case Code.Unimplemented:
      return new ConnectError(`${upstream} does not implement ${context.method} yet`, Code.Unimplemented);
    case Code.Canceled:
      return new ConnectError("the call was cancelled", Code.Canceled);
    default:
      logger.error(fields, "upstream failed");
      return new ConnectError(`${upstream} failed to answer`, Code.Internal);
  }
}
