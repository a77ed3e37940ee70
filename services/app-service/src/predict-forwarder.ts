import type { Client, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { feedbackToken } from "@shadowmesh/common";
import {
  type GetModelRequest,
  type GetModelResponse,
  type PredictBatchRequest,
  type PredictBatchResponse,
  type Prediction,
  type PredictRequest,
  type PredictResponse,
  PredictService,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import type { Mirror, MirroredCall } from "./mirror.js";
import { assertTimeLeft, type CallIds, callIdsOf, deadlineOf, type UpstreamCaller } from "./upstream-call.js";

export interface PredictForwarderOptions {
  /** The primary model-service. */
  primary: Client<typeof PredictService>;
  /** Calls the primary: request id, deadline, retry, error mapping, metrics. */
  caller: UpstreamCaller;
  /** Local mirroring, one Mirror per shadow (candidate); empty in cluster mode, where Istio mirrors. */
  mirrors: readonly Mirror[];
  /** Deadline of each call to model-service, in ms (a shorter client timeout wins). */
  deadlineMs: number;
  /** The feedback secret (APP_SERVICE_FEEDBACK_SECRET); empty = predictions carry no feedback token. */
  feedbackSecret: string;
}

/**
 * PredictService as app-service serves it: every call is forwarded to the primary model-service over gRPC
 * (grpc-js) with the join key app-service made (`x-request-id`), the caller's own id (`x-client-request-id`) and a
 * deadline. Predict and PredictBatch are also mirrored to every shadow when local mirroring is on (each shadow
 * decides on its own whether it takes the call); the primary's answer is returned without waiting for any of them. Every returned prediction carries the join key as `request_id`, the
 * caller's id as `client_request_id` and, when a feedback secret is set, the feedback token for its request id
 * and batch index (the proof SubmitFeedback needs).
 */
export class PredictForwarder implements ServiceImpl<typeof PredictService> {
  readonly #options: PredictForwarderOptions;

  constructor(options: PredictForwarderOptions) {
    this.#options = options;
  }

  async predict(request: PredictRequest, context: HandlerContext): Promise<PredictResponse> {
    const { primary, caller, deadlineMs } = this.#options;
    const ids = callIdsOf(context);
    const deadline = deadlineOf(context, deadlineMs);
    assertTimeLeft(deadline);
    const pending = caller.unary(
      PredictService.method.predict,
      (options) => primary.predict(request, options),
      ids,
      deadline,
      context.signal,
    );
    this.#mirror(
      { method: "Predict", request },
      ids,
      deadline,
      pending.then(
        () => 1,
        () => 0,
      ),
    );
    const response = await pending;
    if (response.prediction) {
      this.#stamp(response.prediction, ids, 0);
    }
    return response;
  }

  async predictBatch(request: PredictBatchRequest, context: HandlerContext): Promise<PredictBatchResponse> {
    const { primary, caller, deadlineMs } = this.#options;
    const ids = callIdsOf(context);
    const deadline = deadlineOf(context, deadlineMs);
    assertTimeLeft(deadline);
    const pending = caller.unary(
      PredictService.method.predictBatch,
      (options) => primary.predictBatch(request, options),
      ids,
      deadline,
      context.signal,
    );
    this.#mirror(
      { method: "PredictBatch", request },
      ids,
      deadline,
      pending.then(
        (answer) => answer.predictions.length,
        () => 0,
      ),
    );
    const response = await pending;
    for (const [index, prediction] of response.predictions.entries()) {
      this.#stamp(prediction, ids, index);
    }
    return response;
  }

  getModel(request: GetModelRequest, context: HandlerContext): Promise<GetModelResponse> {
    const { primary, caller, deadlineMs } = this.#options;
    return caller.unary(
      PredictService.method.getModel,
      (options) => primary.getModel(request, options),
      callIdsOf(context),
      deadlineOf(context, deadlineMs),
      context.signal,
    );
  }

  /** Hands the call to every shadow's mirror (each samples, bounds and sends on its own; none waits). */
  #mirror(call: MirroredCall, ids: CallIds, deadline: number, primaryAnswers: Promise<number>): void {
    for (const mirror of this.#options.mirrors) {
      mirror.send(call, ids, deadline, primaryAnswers);
    }
  }

  /** The edge's ids and the feedback token on one returned prediction. */
  #stamp(prediction: Prediction, ids: CallIds, batchIndex: number): void {
    const secret = this.#options.feedbackSecret;
    prediction.requestId = ids.requestId;
    prediction.clientRequestId = ids.clientRequestId ?? "";
    prediction.feedbackToken = secret === "" ? "" : feedbackToken(secret, ids.requestId, batchIndex);
  }
}
