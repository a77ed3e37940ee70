import { create } from "@bufbuild/protobuf";
import { REQUEST_ID_HEADER } from "@shadowmesh/common";
import {
  type PredictResponse,
  PredictResponseSchema,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";

/** A fixed prediction, shaped like a real one, for the benchmark's no-inference servers. */
export function cannedResponse(requestId: string): PredictResponse {
  return create(PredictResponseSchema, {
    prediction: {
      label: "ham",
      scores: [
        { label: "ham", probability: 0.9 },
        { label: "spam", probability: 0.1 },
      ],
      modelName: "bench",
      modelVersion: "0.0.0",
      requestId,
      inferenceMs: 0,
    },
  });
}

export function requestIdOf(headers: Headers): string {
  return headers.get(REQUEST_ID_HEADER) ?? "";
}
