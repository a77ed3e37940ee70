import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { grpcCodeName, type Logger, type PredictionReporter } from "@shadowmesh/common";
import type {
  PredictBatchRequest,
  PredictRequest,
  PredictService,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { decideFault, faultsActive, injectedAbort, type ShadowFaults } from "./fault.js";
import type { AppMetrics } from "./metrics.js";
import type { ShadowTarget } from "./shadows.js";
import { type CallIds, idHeaders } from "./upstream-call.js";

export interface MirrorOptions {
  /** The shadow (candidate): its name, model name, share of calls (0–100) and in-flight bound (shadows.ts). */
  target: Pick<ShadowTarget, "name" | "modelName" | "percent" | "maxInFlight">;
  /** The shadow model-service's client (on its own transport: one connection per shadow). */
  client: Client<typeof PredictService>;
  metrics: AppMetrics;
  logger: Logger;
  /**
   * Reports mirrored calls that failed (role SHADOW, source MIRROR) to metrics-service; absent = failures are only
   * counted in app_mirror_failed_total.
   */
  reporter?: PredictionReporter;
  /** Faults to inject into mirrored calls (APP_SERVICE_SHADOW_FAULT_*, fault.ts); absent = none. */
  faults?: ShadowFaults;
  /** Random number in [0, 1); injectable for tests. */
  random?: () => number;
}

export type MirroredCall =
  | { method: "Predict"; request: PredictRequest }
  | { method: "PredictBatch"; request: PredictBatchRequest };

/**
 * Local shadow mirroring to one shadow (candidate): what one entry of Istio's VirtualService `mirrors` list does in a
 * cluster, done by app-service on one machine. There is one Mirror per shadow, each with its own sampling, in-flight
 * bound, connection, metrics (label `shadow`) and fault draws, so a slow or dead shadow fills only its own bound and
 * never delays the primary or another shadow. The same request goes to the shadow with the same join key
 * (`x-request-id`) and the same absolute deadline, so the shadow's report joins the primary's in metrics-service. It is fire and forget: `send` returns at
 * once, the user's response never waits for the shadow, never includes its answer and never fails because of it.
 *
 * A mirrored call that ends with an error (DEADLINE_EXCEEDED while the shadow hangs, UNAVAILABLE while it is down,
 * …) is reported to metrics-service as one record per text the primary answered (one, at index 0, when the primary
 * failed the call: #report): role SHADOW, source MIRROR, the code, the call's
 * elapsed time as seen from here, the input fingerprint, and the shadow's model. That record outweighs whatever the shadow itself reports for the same request, so a hung shadow shows up as
 * failing. The record names the shadow's model as its last answer named it, or else as configured (SHADOW_NAME or the
 * SHADOWS entry). Mirrors that were sampled out or dropped at the in-flight bound are not reported: they show up as
 * unmatched primaries in the coverage check.
 */
export class Mirror {
  readonly #options: MirrorOptions;
  readonly #random: () => number;
  #inFlight = 0;
  /** The shadow's model as its last answer named it (until then the configured name, no version). */
  #model: { name: string; version: string };
  /** Model names already warned about (an answer naming another model than the configured one). */
  readonly #warned = new Set<string>();

  constructor(options: MirrorOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#model = { name: options.target.modelName, version: "" };
    // Present from the start (0), so that dashboards see every shadow before its first call.
    options.metrics.mirrorInFlight.set({ shadow: options.target.name }, 0);
  }

  /** The shadow's name (the `shadow` label). */
  get name(): string {
    return this.#options.target.name;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Mirrors `call` if it is sampled in and there is room; never throws, never waits. `primaryAnswers` settles with
   * the number of predictions the primary returned (0 when its call failed): a failed mirror is reported in the
   * shape of the records the primary's side produced, so they pair (see #report).
   */
  send(call: MirroredCall, ids: CallIds, deadline: number, primaryAnswers?: Promise<number>): void {
    const { metrics, target } = this.#options;
    const { percent, maxInFlight } = target;
    const shadowLabel = target.name;
    // percent 100 must always mirror and 0 never, whatever the random source returns.
    if (percent <= 0 || (percent < 100 && this.#random() * 100 >= percent)) {
      metrics.mirrorSampledOut.inc({ shadow: shadowLabel, method: call.method });
      return;
    }
    if (this.#inFlight >= maxInFlight) {
      metrics.mirrorDropped.inc({ shadow: shadowLabel, method: call.method, reason: "in_flight_limit" });
      return;
    }
    this.#inFlight++;
    metrics.mirrorInFlight.set({ shadow: shadowLabel }, this.#inFlight);
    metrics.mirrorSent.inc({ shadow: shadowLabel, method: call.method });
    const headers = idHeaders(ids);
    const client = this.#options.client;
    const started = process.hrtime.bigint();
    // The same absolute deadline as the primary's call: what is left of it when the call is sent (after a fault
    // delay, possibly nothing).
    const send = (): Promise<{ name: string; version: string } | undefined> => {
      const timeoutMs = deadline - Date.now();
      if (timeoutMs <= 0) {
        return Promise.reject(
          new ConnectError("the call's deadline passed before it was mirrored", Code.DeadlineExceeded),
        );
      }
      const options = { headers, timeoutMs };
      return call.method === "Predict"
        ? client.predict(call.request, options).then(({ prediction }) => modelOf(prediction))
        : client.predictBatch(call.request, options).then(({ predictions }) => modelOf(predictions[0]));
    };
    const faults = this.#options.faults;
    const pending = faultsActive(faults) ? this.#withFault(faults, send) : send();
    pending.then(
      (model) => {
        this.#settle();
        if (model) {
          this.#learn(model);
        }
      },
      (error: unknown) => {
        const elapsedNs = Number(process.hrtime.bigint() - started);
        this.#settle();
        const code = ConnectError.from(error).code;
        metrics.mirrorFailed.inc({ shadow: shadowLabel, method: call.method, code: grpcCodeName(code) });
        this.#options.logger.debug(
          { requestId: ids.requestId, shadow: shadowLabel, method: call.method, code: grpcCodeName(code) },
          "mirror failed",
        );
        void this.#report(call, ids.requestId, code, elapsedNs, primaryAnswers);
      },
    );
  }

  /** The call as the configured faults make it: held for the delay, then aborted or sent (fault.ts). */
  async #withFault<T>(faults: ShadowFaults, send: () => Promise<T>): Promise<T> {
    const { delayMs, abort } = decideFault(faults, this.#random);
    const shadow = this.#options.target.name;
    if (delayMs > 0) {
      this.#options.metrics.shadowFaultsInjected.inc({ shadow, kind: "delay" });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
    if (abort !== undefined) {
      this.#options.metrics.shadowFaultsInjected.inc({ shadow, kind: "abort" });
      throw injectedAbort(abort);
    }
    return send();
  }

  /**
   * One record per text the primary answered: a call the primary answered with N predictions (the model-service
   * reported N records) gets N shadow records; a call the primary failed (the model-service reported one record,
   * batch index 0, for the whole call) gets one, at index 0 with the first text's fingerprint. Reporting one record
   * per text of a call nobody answered would turn one refused PredictBatch with thousands of texts into thousands
   * of unmatched shadow records (a mirror ratio of thousands of per cent, and a store filled by one request).
   */
  async #report(
    call: MirroredCall,
    requestId: string,
    code: number,
    elapsedNs: number,
    primaryAnswers: Promise<number> | undefined,
  ): Promise<void> {
    const reporter = this.#options.reporter;
    if (!reporter) {
      return;
    }
    const texts = call.method === "Predict" ? [call.request.text] : call.request.texts;
    const answered = primaryAnswers === undefined ? texts.length : await primaryAnswers.catch(() => 0);
    const reported = answered > 0 ? texts.slice(0, answered) : [texts[0] ?? ""];
    const timeMs = Date.now();
    reported.forEach((text, batchIndex) => {
      reporter.report({
        requestId,
        batchIndex,
        modelName: this.#model.name,
        modelVersion: this.#model.version,
        label: "",
        labels: [],
        probabilities: undefined,
        latencyNs: elapsedNs,
        grpcStatusCode: code,
        timeMs,
        text,
      });
    });
  }

  #settle(): void {
    this.#inFlight--;
    this.#options.metrics.mirrorInFlight.set({ shadow: this.#options.target.name }, this.#inFlight);
  }

  /** Keeps the model an answer named; warns once per name when it is not the configured one. */
  #learn(model: { name: string; version: string }): void {
    const configured = this.#options.target.modelName;
    if (configured !== "" && model.name !== configured && !this.#warned.has(model.name)) {
      this.#warned.add(model.name);
      this.#options.logger.warn(
        { shadow: this.#options.target.name, configured, answered: model.name },
        "the shadow answers with another model than its configured name; its failed mirrors are reported under the name it answers with",
      );
    }
    this.#model = model;
  }
}

function modelOf(
  prediction: { modelName: string; modelVersion: string } | undefined,
): { name: string; version: string } | undefined {
  return prediction && prediction.modelName !== ""
    ? { name: prediction.modelName, version: prediction.modelVersion }
    : undefined;
}
