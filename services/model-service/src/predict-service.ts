import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  callCancelled,
  callStartedAt,
  type Logger,
  REQUEST_ID_HEADER,
  requestIdFrom,
  textProblem,
} from "@shadowmesh/common";
import type {
  GetModelResponseSchema,
  PredictBatchRequest,
  PredictBatchResponseSchema,
  PredictionSchema,
  PredictRequest,
  PredictResponseSchema,
  PredictService,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import type { Batcher, ItemResult } from "./batcher.js";
import type { ModelMetrics } from "./metrics.js";
import type { LoadedModelInfo } from "./model.js";
import type { ModelManager } from "./model-manager.js";
import type { PredictionReporter } from "./reporter.js";

export interface PredictServiceDeps {
  models: ModelManager;
  batcher: Batcher;
  reporter: PredictionReporter;
  metrics: ModelMetrics;
  logger: Logger;
  /** Most texts one PredictBatch call may carry. */
  maxRequestTexts: number;
}

/** Codes that describe the caller's request or situation rather than a fault of ours: logged at warn. */
const CLIENT_CODES = new Set<Code>([
  Code.InvalidArgument,
  Code.DeadlineExceeded,
  Code.Canceled,
  Code.Unavailable,
  Code.ResourceExhausted,
]);

type PredictionInit = MessageInitShape<typeof PredictionSchema>;

/**
 * PredictService on the serving model. Each call takes its request id from the `x-request-id` metadata (or makes
 * one), returns it in the response metadata and in every prediction, and is reported to metrics-service — failed
 * calls too, with their gRPC code, so the comparison can count errors per role.
 */
export class PredictServiceImpl implements ServiceImpl<typeof PredictService> {
  constructor(private readonly deps: PredictServiceDeps) {}

  async predict(
    request: PredictRequest,
    context: HandlerContext,
  ): Promise<MessageInitShape<typeof PredictResponseSchema>> {
    const started = callStartedAt(context);
    const requestId = this.#begin(context);
    const text = request.text;
    try {
      const model = this.#model();
      validateText(text, model.maxTextChars, "text");
      const result = await this.deps.batcher.submit(text, deadlineOf(context), undefined, started);
      answerable(context);
      const prediction = this.#succeeded(requestId, 0, text, result, started);
      return { prediction };
    } catch (error) {
      throw this.#failed(requestId, text, error, started, "Predict");
    }
  }

  async predictBatch(
    request: PredictBatchRequest,
    context: HandlerContext,
  ): Promise<MessageInitShape<typeof PredictBatchResponseSchema>> {
    const started = callStartedAt(context);
    const requestId = this.#begin(context);
    const texts = request.texts;
    try {
      const model = this.#model();
      if (texts.length === 0) {
        throw new ConnectError("texts must not be empty", Code.InvalidArgument);
      }
      if (texts.length > this.deps.maxRequestTexts) {
        throw new ConnectError(
          `texts has ${texts.length} entries; the limit is ${this.deps.maxRequestTexts} (max_batch_size)`,
          Code.InvalidArgument,
        );
      }
      texts.forEach((text, index) => {
        validateText(text, model.maxTextChars, `texts[${index}]`);
      });
      const deadline = deadlineOf(context);
      if (deadline !== undefined && deadline <= Date.now()) {
        throw new ConnectError("the deadline passed before the batch ran", Code.DeadlineExceeded);
      }
      const results = await this.deps.batcher.runNow(texts, started);
      answerable(context);
      return {
        predictions: results.map((result, index) =>
          this.#succeeded(requestId, index, texts[index] as string, result, started),
        ),
      };
    } catch (error) {
      throw this.#failed(requestId, texts[0] ?? "", error, started, "PredictBatch");
    }
  }

  getModel(): MessageInitShape<typeof GetModelResponseSchema> {
    const model = this.#model();
    return {
      model: {
        name: model.name,
        version: model.version,
        labels: model.labels,
        sha256: model.sha256,
        maxTextChars: model.maxTextChars,
        maxBatchSize: this.deps.maxRequestTexts,
        decisionThreshold: model.decisionThreshold,
        trainingMetrics: model.metrics,
        opset: model.opset,
        loadTime: timestampFromDate(model.loadedAt),
      },
    };
  }

  #model(): LoadedModelInfo {
    const model = this.deps.models.current;
    if (!model) {
      throw new ConnectError("no model is loaded yet", Code.Unavailable);
    }
    return model.info;
  }

  #begin(context: HandlerContext): string {
    const requestId = requestIdFrom(context.requestHeader.get(REQUEST_ID_HEADER));
    context.responseHeader.set(REQUEST_ID_HEADER, requestId);
    return requestId;
  }

  #succeeded(
    requestId: string,
    batchIndex: number,
    text: string,
    result: ItemResult,
    started: bigint,
  ): PredictionInit {
    const { model, label, probabilities } = result;
    const labels = model.labels;
    const scores = new Array(labels.length);
    for (let i = 0; i < labels.length; i++) {
      scores[i] = { label: labels[i], probability: probabilities[i] ?? 0 };
    }
    this.deps.metrics.prediction(model, label, probabilities[labels.indexOf(label)] ?? 0);
    this.deps.reporter.report({
      requestId,
      batchIndex,
      modelName: model.name,
      modelVersion: model.version,
      label,
      labels,
      probabilities,
      latencyNs: Number(process.hrtime.bigint() - started),
      grpcStatusCode: 0,
      timeMs: Date.now(),
      text,
    });
    if (this.deps.logger.isLevelEnabled("debug")) {
      this.deps.logger.debug(
        { requestId, batchIndex, label, version: model.version, batchSize: result.batchSize },
        "prediction",
      );
    }
    return {
      label,
      scores,
      modelName: model.name,
      modelVersion: model.version,
      requestId,
      inferenceMs: result.inferenceMs,
    };
  }

  #failed(requestId: string, text: string, error: unknown, started: bigint, method: string): ConnectError {
    let connectError: ConnectError;
    if (error instanceof ConnectError) {
      connectError = error;
    } else {
      this.deps.logger.error({ err: error, requestId, method }, "unexpected error");
      connectError = new ConnectError("internal error", Code.Internal);
    }
    if (error instanceof ConnectError) {
      const level = CLIENT_CODES.has(connectError.code) ? "warn" : "error";
      this.deps.logger[level](
        { requestId, method, code: Code[connectError.code], err: connectError.rawMessage },
        "call failed",
      );
    }
    const model = this.deps.models.current?.info;
    this.deps.reporter.report({
      requestId,
      batchIndex: 0,
      modelName: model?.name ?? "",
      modelVersion: model?.version ?? "",
      label: "",
      labels: [],
      probabilities: undefined,
      latencyNs: Number(process.hrtime.bigint() - started),
      grpcStatusCode: connectError.code as number,
      timeMs: Date.now(),
      text,
    });
    connectError.metadata.set(REQUEST_ID_HEADER, requestId);
    return connectError;
  }
}

/**
 * Throws when the caller cannot get the answer any more: its deadline passed while the text was classified
 * (grpc-js has already answered DEADLINE_EXCEEDED) or it cancelled the call. The record then carries that code
 * instead of OK, so the comparison sees what the caller saw, e.g. a shadow that answers only after the mirror gave
 * up.
 */
function answerable(context: HandlerContext): void {
  const left = context.timeoutMs();
  if (left !== undefined && left <= 0) {
    throw new ConnectError("the deadline passed before the answer was ready", Code.DeadlineExceeded);
  }
  if (callCancelled(context)) {
    throw new ConnectError("the caller cancelled the call before the answer was ready", Code.Canceled);
  }
}

/** The call's deadline in ms since the epoch, if it has one. */
function deadlineOf(context: HandlerContext): number | undefined {
  const left = context.timeoutMs();
  return left === undefined ? undefined : Date.now() + left;
}

/**
 * Empty text (only whitespace, control, format or zero-width characters: the shared rule in
 * `@shadowmesh/common`'s text.ts) or text over the model's limit in characters (Unicode code points) is
 * INVALID_ARGUMENT.
 */
export function validateText(text: string, maxTextChars: number, field: string): void {
  const problem = textProblem(text, maxTextChars, field);
  if (problem !== undefined) {
    throw new ConnectError(problem, Code.InvalidArgument);
  }
}
