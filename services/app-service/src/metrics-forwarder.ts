import { type Client, Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  type GetShadowReportRequest,
  type GetShadowReportResponse,
  type ListCandidatesRequest,
  type ListCandidatesResponse,
  MetricsService,
  type SubmitFeedbackRequest,
  type SubmitFeedbackResponse,
  type WatchShadowReportRequest,
  type WatchShadowReportResponse,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import type { PublicMetricsImpl } from "./connect.js";
import { callIdsOf, deadlineOf, type UpstreamCaller } from "./upstream-call.js";

export interface MetricsForwarderOptions {
  client: Client<typeof MetricsService>;
  caller: UpstreamCaller;
  /** Deadline of each unary call, in ms (a shorter client timeout wins). */
  deadlineMs: number;
  /** Aborted when app-service shuts down: ends the live report streams, which never end by themselves. */
  streamsSignal?: AbortSignal;
}

/**
 * The browser-facing part of MetricsService, forwarded to metrics-service: feedback, the candidates, a candidate's
 * report and its live stream. Requests pass unchanged (the `candidate` selector too: metrics-service validates it,
 * and its refusals — NOT_FOUND, FAILED_PRECONDITION, INVALID_ARGUMENT — pass through with their message).
 * `ReportPredictions` is internal (model-services call it directly) and is not part of this class.
 */
export class MetricsForwarder implements PublicMetricsImpl {
  readonly #options: MetricsForwarderOptions;

  constructor(options: MetricsForwarderOptions) {
    this.#options = options;
  }

  submitFeedback(request: SubmitFeedbackRequest, context: HandlerContext): Promise<SubmitFeedbackResponse> {
    const { client, caller, deadlineMs } = this.#options;
    return caller.unary(
      MetricsService.method.submitFeedback,
      (options) => client.submitFeedback(request, options),
      callIdsOf(context),
      deadlineOf(context, deadlineMs),
      context.signal,
    );
  }

  getShadowReport(
    request: GetShadowReportRequest,
    context: HandlerContext,
  ): Promise<GetShadowReportResponse> {
    const { client, caller, deadlineMs } = this.#options;
    return caller.unary(
      MetricsService.method.getShadowReport,
      (options) => client.getShadowReport(request, options),
      callIdsOf(context),
      deadlineOf(context, deadlineMs),
      context.signal,
    );
  }

  listCandidates(request: ListCandidatesRequest, context: HandlerContext): Promise<ListCandidatesResponse> {
    const { client, caller, deadlineMs } = this.#options;
    return caller.unary(
      MetricsService.method.listCandidates,
      (options) => client.listCandidates(request, options),
      callIdsOf(context),
      deadlineOf(context, deadlineMs),
      context.signal,
    );
  }

  async *watchShadowReport(
    request: WatchShadowReportRequest,
    context: HandlerContext,
  ): AsyncIterable<WatchShadowReportResponse> {
    const { client, caller, streamsSignal } = this.#options;
    const signal = streamsSignal ? AbortSignal.any([context.signal, streamsSignal]) : context.signal;
    try {
      yield* caller.stream(
        MetricsService.method.watchShadowReport,
        (options) => client.watchShadowReport(request, options),
        callIdsOf(context),
        signal,
      );
    } catch (error) {
      if (streamsSignal?.aborted && !context.signal.aborted) {
        throw new ConnectError("app-service is shutting down; reconnect", Code.Unavailable);
      }
      throw error;
    }
  }
}
