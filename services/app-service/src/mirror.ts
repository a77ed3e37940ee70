import { ConnectError } from "@connectrpc/connect";
import { type GrpcClient, grpcCodeName, type Logger, REQUEST_ID_HEADER } from "@shadowmesh/common";
import type {
  PredictBatchRequest,
  PredictRequest,
  PredictService,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import type { AppMetrics } from "./metrics.js";

export interface MirrorOptions {
  /** The shadow model-service's client. */
  shadow: GrpcClient<typeof PredictService>;
  /** Share of calls to mirror, 0–100. */
  percent: number;
  /** Most shadow calls in flight at once; beyond it a mirror is dropped and counted. */
  maxInFlight: number;
  metrics: AppMetrics;
  logger: Logger;
  /** Random number in [0, 1); injectable for tests. */
  random?: () => number;
}

export type MirroredCall =
  | { method: "Predict"; request: PredictRequest }
  | { method: "PredictBatch"; request: PredictBatchRequest };

/**
 * Local shadow mirroring: what Istio's VirtualService `mirror` does in a cluster, done by app-service on one
 * machine. The same request goes to the shadow with the same `x-request-id` and the same absolute deadline, so the
 * shadow's report joins the primary's in metrics-service. It is fire and forget: `send` returns at once, the
 * user's response never waits for the shadow, never includes its answer and never fails because of it.
 */
export class Mirror {
  readonly #options: MirrorOptions;
  readonly #random: () => number;
  #inFlight = 0;

  constructor(options: MirrorOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Mirrors `call` if it is sampled in and there is room; never throws, never waits. */
  send(call: MirroredCall, requestId: string, deadline: number): void {
    const { metrics, percent, maxInFlight } = this.#options;
    // percent 100 must always mirror and 0 never, whatever the random source returns.
    if (percent <= 0 || (percent < 100 && this.#random() * 100 >= percent)) {
      metrics.mirrorSampledOut.inc({ method: call.method });
      return;
    }
    if (this.#inFlight >= maxInFlight) {
      metrics.mirrorDropped.inc({ method: call.method, reason: "in_flight_limit" });
      return;
    }
    this.#inFlight++;
    metrics.mirrorInFlight.set(this.#inFlight);
    metrics.mirrorSent.inc({ method: call.method });
    const options = { headers: { [REQUEST_ID_HEADER]: requestId }, deadline };
    const shadow = this.#options.shadow;
    const pending: Promise<unknown> =
      call.method === "Predict"
        ? shadow.predict(call.request, options)
        : shadow.predictBatch(call.request, options);
    pending.then(
      () => this.#settle(),
      (error: unknown) => {
        this.#settle();
        const code = ConnectError.from(error).code;
        metrics.mirrorFailed.inc({ method: call.method, code: grpcCodeName(code) });
        this.#options.logger.debug(
          { requestId, method: call.method, code: grpcCodeName(code) },
          "mirror failed",
        );
      },
    );
  }

  #settle(): void {
    this.#inFlight--;
    this.#options.metrics.mirrorInFlight.set(this.#inFlight);
  }
}
