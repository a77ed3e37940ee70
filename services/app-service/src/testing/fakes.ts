import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { addService, CLIENT_REQUEST_ID_HEADER, HealthReporter, REQUEST_ID_HEADER } from "@shadowmesh/common";
import {
  MetricsService,
  type MetricsService as MetricsServiceDesc,
  ShadowReportSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import {
  type PredictResponseSchema,
  PredictService,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";

/**
 * In-process fakes of model-service and metrics-service for tests: real grpc-js servers on 127.0.0.1 port 0, serving
 * the real contracts through the same adapter the real services use. They record every call (request, request id,
 * deadline) and let a test decide each answer.
 */

export interface RecordedCall {
  method: string;
  request: unknown;
  requestId: string | null;
  /** The caller's own id, as app-service passed it on (`x-client-request-id`). */
  clientRequestId: string | null;
  /** The time left until the call's deadline when it arrived, in ms. */
  timeoutMs: number | undefined;
}

export interface FakeServer {
  readonly address: string;
  readonly calls: RecordedCall[];
  readonly health: HealthReporter;
  close(): Promise<void>;
}

/** A deterministic toy classifier: "spam" when the text mentions money or prizes. */
export function toyPrediction(
  text: string,
  requestId: string,
  modelName = "spam-v1",
): MessageInitShape<typeof PredictResponseSchema>["prediction"] {
  const spammy = /free|win|prize|\$\$\$|cash/i.test(text);
  const spam = spammy ? 0.93 : 0.08;
  return {
    label: spammy ? "spam" : "ham",
    scores: [
      { label: "ham", probability: 1 - spam },
      { label: "spam", probability: spam },
    ],
    modelName,
    modelVersion: modelName === "spam-v2" ? "2.0.0" : "1.0.0",
    requestId,
    inferenceMs: 0.05,
  };
}

export type PredictImpl = Partial<ServiceImpl<typeof PredictService>>;

async function listen(server: grpc.Server): Promise<string> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return `127.0.0.1:${port}`;
}

function closeServer(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => {
    server.forceShutdown();
    resolve();
  });
}

function record(calls: RecordedCall[], method: string, request: unknown, context: HandlerContext) {
  calls.push({
    method,
    request,
    requestId: context.requestHeader.get(REQUEST_ID_HEADER),
    clientRequestId: context.requestHeader.get(CLIENT_REQUEST_ID_HEADER),
    timeoutMs: context.timeoutMs(),
  });
}

/**
 * A fake model-service. By default it classifies with `toyPrediction`; `overrides` replace single methods (they are
 * called after the call is recorded). Health starts SERVING.
 */
export async function startFakeModelService(
  modelName = "spam-v1",
  overrides: () => PredictImpl = () => ({}),
): Promise<FakeServer> {
  const server = new grpc.Server();
  const calls: RecordedCall[] = [];
  const health = new HealthReporter([PredictService.typeName]);
  health.addToServer(server);
  health.set("SERVING");
  const impl: ServiceImpl<typeof PredictService> = {
    predict: async (request, context) => {
      record(calls, "Predict", request, context);
      const override = overrides().predict;
      if (override) {
        return override(request, context);
      }
      const requestId = context.requestHeader.get(REQUEST_ID_HEADER) ?? "";
      return { prediction: toyPrediction(request.text, requestId, modelName) };
    },
    predictBatch: async (request, context) => {
      record(calls, "PredictBatch", request, context);
      const override = overrides().predictBatch;
      if (override) {
        return override(request, context);
      }
      const requestId = context.requestHeader.get(REQUEST_ID_HEADER) ?? "";
      return { predictions: request.texts.map((text) => toyPrediction(text, requestId, modelName) ?? {}) };
    },
    getModel: async (request, context) => {
      record(calls, "GetModel", request, context);
      const override = overrides().getModel;
      if (override) {
        return override(request, context);
      }
      return {
        model: {
          name: modelName,
          version: "1.0.0",
          labels: ["ham", "spam"],
          maxTextChars: 20_000,
          maxBatchSize: 64,
        },
      };
    },
  };
  addService(server, PredictService, impl);
  const address = await listen(server);
  return { address, calls, health, close: () => closeServer(server) };
}

export type MetricsImpl = Partial<ServiceImpl<typeof MetricsServiceDesc>>;

/** A fake metrics-service: only the methods in `impl` are implemented (the rest answer UNIMPLEMENTED). */
export async function startFakeMetricsService(impl: MetricsImpl): Promise<FakeServer> {
  const server = new grpc.Server();
  const calls: RecordedCall[] = [];
  const health = new HealthReporter([MetricsService.typeName]);
  health.addToServer(server);
  health.set("SERVING");
  const recorded: MetricsImpl = {};
  if (impl.submitFeedback) {
    const fn = impl.submitFeedback;
    recorded.submitFeedback = (request, context) => {
      record(calls, "SubmitFeedback", request, context);
      return fn(request, context);
    };
  }
  if (impl.getShadowReport) {
    const fn = impl.getShadowReport;
    recorded.getShadowReport = (request, context) => {
      record(calls, "GetShadowReport", request, context);
      return fn(request, context);
    };
  }
  if (impl.watchShadowReport) {
    const fn = impl.watchShadowReport;
    recorded.watchShadowReport = (request, context) => {
      record(calls, "WatchShadowReport", request, context);
      return fn(request, context);
    };
  }
  if (impl.reportPredictions) {
    const fn = impl.reportPredictions;
    recorded.reportPredictions = (request, context) => {
      record(calls, "ReportPredictions", request, context);
      return fn(request, context);
    };
  }
  addService(server, MetricsService, recorded);
  const address = await listen(server);
  return { address, calls, health, close: () => closeServer(server) };
}

/** A small report with `pairs` agreeing pairs. */
export function fakeReport(pairs: number) {
  return create(ShadowReportSchema, {
    totals: { requestCount: BigInt(pairs), pairCount: BigInt(pairs) },
    agreement: { agreeingCount: BigInt(pairs), pairCount: BigInt(pairs), rate: pairs > 0 ? 1 : 0 },
  });
}

/** Waits until the handler is aborted (the caller's deadline passed or it went away), then fails. */
export function hang(context: HandlerContext): Promise<never> {
  return new Promise((_, reject) => {
    const fail = () => reject(new ConnectError("aborted", Code.Canceled));
    if (context.signal.aborted) {
      fail();
    } else {
      context.signal.addEventListener("abort", fail, { once: true });
    }
  });
}

/** An address where nothing listens (a port that was free a moment ago). */
export async function deadAddress(): Promise<string> {
  const server = new grpc.Server();
  const address = await listen(server);
  await closeServer(server);
  return address;
}
