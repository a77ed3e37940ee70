import { mkdtemp, rm } from "node:fs/promises";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import path from "node:path";
import { createLogger, type Logger } from "@shadowmesh/common";
import { startMetricsSink as startSink } from "@shadowmesh/common/testing";
import type { PredictionRecord } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { type Config, readConfig } from "../config.js";
import type { BatchOutput, Classifier, LoadedModelInfo } from "../model.js";

/** A logger that writes nowhere (set LOG_TESTS=1 to see the lines). */
export function quietLogger(): Logger {
  return createLogger("model-service-test", process.env.LOG_TESTS ? "debug" : "silent");
}

/** A configuration for tests: ports 0, reporting off unless an address is given, no file watching. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return readConfig({
    MODEL_SERVICE_GRPC_PORT: "0",
    MODEL_SERVICE_METRICS_PORT: "0",
    MODEL_SERVICE_METRICS_SERVICE_ADDRESS: "",
    MODEL_SERVICE_WATCH_MODEL: "false",
    MODEL_SERVICE_REPORT_INTERVAL_MS: "20",
    MODEL_SERVICE_SHUTDOWN_TIMEOUT_MS: "8000",
    ...Object.fromEntries(Object.entries(overrides).map(([key, value]) => [`MODEL_SERVICE_${key}`, value])),
  });
}

/** A temporary directory, removed by the returned cleanup. */
export async function tempDir(
  prefix = "model-service-",
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * The shared in-process MetricsService sink (@shadowmesh/common/testing), keeping every record it receives
 * (duplicates included, as this sink always did).
 */
export const startMetricsSink = () => startSink({ dedupe: false });

/** Model info for a fake classifier. */
export function fakeInfo(overrides: Partial<LoadedModelInfo> = {}): LoadedModelInfo {
  return {
    name: "spam-fake",
    version: "1.0.0",
    sha256: "0".repeat(64),
    labels: ["ham", "spam"],
    maxTextChars: 100,
    decisionThreshold: 0.5,
    opset: 20,
    inputName: "text",
    outputs: { label: "label", probabilities: "probabilities" },
    metrics: { f1: 0.5 },
    dir: "/nowhere",
    loadedAt: new Date(),
    loadMs: 1,
    ...overrides,
  };
}

/**
 * A classifier without ONNX: "spam" when the text contains "free". Every run is recorded; while `gate` is set,
 * runs wait for it (to hold calls in the queue deterministically).
 */
export class FakeClassifier implements Classifier {
  readonly runs: string[][] = [];
  gate: Promise<void> | undefined;
  closed = false;

  constructor(readonly info: LoadedModelInfo = fakeInfo()) {}

  async classify(texts: string[]): Promise<BatchOutput> {
    this.runs.push(texts);
    if (this.gate) {
      await this.gate;
    }
    const probabilities = new Float32Array(texts.length * 2);
    const labels = texts.map((text, i) => {
      const spam = text.includes("free");
      probabilities[i * 2] = spam ? 0.1 : 0.8;
      probabilities[i * 2 + 1] = spam ? 0.9 : 0.2;
      return spam ? "spam" : "ham";
    });
    return { labels, probabilities, inferenceMs: 0.01 };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** A promise with its resolve function, to open a FakeClassifier gate. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * A gRPC call made by hand over HTTP/2, to control when each part reaches the server: `open` sends the request
 * headers and resolves once the server has read them (an HTTP/2 PING sent after the HEADERS frame is acknowledged
 * only after the server has processed what came before it); `send` sends the one request message and ends the
 * stream; `result` is the grpc-status and message of the answer.
 */
export async function openRawCall(address: string, method: string, headers: Record<string, string> = {}) {
  const session = http2.connect(`http://${address}`);
  session.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
  const stream = session.request(
    {
      ":method": "POST",
      ":path": method,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    },
    { endStream: false },
  );
  const result = new Promise<{ status: number; message: string }>((resolve, reject) => {
    let status = -1;
    let message = "";
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) status = Number(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) message = decodeURIComponent(String(h["grpc-message"]));
    };
    stream.on("response", take);
    stream.on("trailers", take);
    stream.on("data", () => undefined);
    stream.on("end", () => resolve({ status, message }));
    stream.on("error", reject);
  });
  await new Promise<void>((resolve, reject) => {
    session.ping((error) => (error ? reject(error) : resolve()));
  });
  return {
    send(message: Uint8Array): void {
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      stream.end(frame);
    },
    result,
    close: () => session.close(),
  };
}

/** The latency of a reported record in ms. */
export function latencyMs(record: PredictionRecord): number {
  return Number(record.latency?.seconds ?? 0n) * 1000 + (record.latency?.nanos ?? 0) / 1e6;
}
