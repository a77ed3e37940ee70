import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { GrpcClient } from "@shadowmesh/common";
import type {
  GetModelRequest,
  GetModelResponse,
  PredictBatchRequest,
  PredictBatchResponse,
  PredictRequest,
  PredictResponse,
  PredictService,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import type { Mirror } from "./mirror.js";
import { deadlineOf, requestIdOf, type UpstreamCaller } from "./upstream-call.js";

export interface PredictForwarderOptions {
  /** The primary model-service. */
  primary: GrpcClient<typeof PredictService>;
  /** Calls the primary: request id, deadline, retry, error mapping, metrics. */
  caller: UpstreamCaller;
  /** Local mirroring to the shadow; absent in cluster mode, where Istio mirrors. */
  mirror?: Mirror;
  /** Deadline of each call to model-service, in ms (a shorter client timeout wins). */
  deadlineMs: number;
}

/**
 * PredictService as app-service serves it: every call is forwarded to the primary model-service over gRPC
 * (grpc-js), with the caller's `x-request-id` (or a new one) and a deadline. Predict and PredictBatch are also
 * mirrored to the shadow when local mirroring is on; the primary's answer is returned without waiting for it.
 */
export class PredictForwarder implements ServiceImpl<typeof PredictService> {
  readonly #options: PredictForwarderOptions;

  constructor(options: PredictForwarderOptions) {
    this.#options = options;
  }

  async predict(request: PredictRequest, context: HandlerContext): Promise<PredictResponse> {
    const { primary, caller, mirror, deadlineMs } = this.#options;
    const requestId = requestIdOf(context);
    const deadline = deadlineOf(context, deadlineMs);
    const pending = caller.unary(
      "Predict",
      (options) => primary.predict(request, options),
      requestId,
      deadline,
      context.signal,
    );
    mirror?.send({ method: "Predict", request }, requestId, deadline);
    const response = await pending;
    if (response.prediction && response.prediction.requestId === "") {
      response.prediction.requestId = requestId;
    }
    return response;
  }

  async predictBatch(request: PredictBatchRequest, context: HandlerContext): Promise<PredictBatchResponse> {
    const { primary, caller, mirror, deadlineMs } = this.#options;
    const requestId = requestIdOf(context);
    const deadline = deadlineOf(context, deadlineMs);
    const pending = caller.unary(
      "PredictBatch",
      (options) => primary.predictBatch(request, options),
      requestId,
      deadline,
      context.signal,
    );
    mirror?.send({ method: "PredictBatch", request }, requestId, deadline);
    const response = await pending;
    for (const prediction of response.predictions) {
      if (prediction.requestId === "") {
        prediction.requestId = requestId;
      }
    }
    return response;
  }

  getModel(request: GetModelRequest, context: HandlerContext): Promise<GetModelResponse> {
    const { primary, caller, deadlineMs } = this.#options;
    const requestId = requestIdOf(context);
    return caller.unary(
      "GetModel",
      (options) => primary.getModel(request, options),
      requestId,
      deadlineOf(context, deadlineMs),
      context.signal,
    );
  }
}
