import { createHash } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type PredictionRecordSchema,
  RecordSource,
  Role,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import type { StoredRole } from "../store.js";
import type { RecordWithFeedback } from "./store-testing.js";

/** Test data: prediction records as a model-service would send them, and as the store returns them. */

export interface RecordSpec {
  requestId: string;
  role: "primary" | "shadow";
  label?: string;
  /** Probability of "spam"; "ham" gets the rest. Defaults from the label. */
  spam?: number;
  latencyMs?: number;
  code?: number;
  timeMs: number;
  batchIndex?: number;
  feedback?: string | null;
  text?: string;
  model?: string;
  /** A shadow record's candidate: its model name (default "spam"; a primary's model name is always "spam"). */
  candidate?: string;
  /** The input's fingerprint; default `sha-<request id>`. */
  sha256?: string;
  /** Who reported it: the model-service itself (default) or the mirroring caller. */
  source?: "model" | "mirror" | "unspecified";
}

/** The hex SHA-256 of a text, as model-service fingerprints inputs. */
export const sha256Of = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

const SOURCE_NUMBER = { unspecified: 0, model: 1, mirror: 2 } as const;

/** A Duration init from (fractional) milliseconds, with whole nanoseconds. */
export function durationOfMs(ms: number) {
  const seconds = Math.floor(ms / 1000);
  return { seconds: BigInt(seconds), nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

const roleNumber = (role: RecordSpec["role"]): StoredRole =>
  role === "primary" ? Role.PRIMARY : Role.SHADOW;

function probabilitiesOf(spec: RecordSpec): [string, number][] {
  if ((spec.code ?? 0) !== 0) {
    return [];
  }
  const spam = spec.spam ?? (spec.label === "spam" ? 0.9 : 0.1);
  return [
    ["ham", 1 - spam],
    ["spam", spam],
  ];
}

/** A stored record (input of buildReport). */
export function stored(spec: RecordSpec): RecordWithFeedback {
  const failed = (spec.code ?? 0) !== 0;
  return {
    requestId: spec.requestId,
    batchIndex: spec.batchIndex ?? 0,
    role: roleNumber(spec.role),
    modelName: spec.role === "shadow" ? (spec.candidate ?? "spam") : "spam",
    modelVersion: spec.model ?? (spec.role === "primary" ? "v1" : "v2"),
    label: failed ? "" : (spec.label ?? "ham"),
    probabilities: probabilitiesOf(spec),
    latencyMs: spec.latencyMs ?? 1,
    grpcCode: spec.code ?? 0,
    timeMs: spec.timeMs,
    receivedMs: spec.timeMs,
    inputSha256: spec.sha256 ?? `sha-${spec.requestId}`,
    inputLength: 42,
    inputText: spec.text ?? null,
    instance: spec.role,
    source: SOURCE_NUMBER[spec.source ?? "model"],
    feedbackLabel: spec.feedback ?? null,
  };
}

/** A PredictionRecord message init (input of ReportPredictions). */
export function wire(spec: RecordSpec): MessageInitShape<typeof PredictionRecordSchema> {
  const record = stored(spec);
  return {
    requestId: record.requestId,
    batchIndex: record.batchIndex,
    role: spec.role === "primary" ? Role.PRIMARY : Role.SHADOW,
    modelName: record.modelName,
    modelVersion: record.modelVersion,
    label: record.label,
    probabilities: record.probabilities.map(([label, probability]) => ({ label, probability })),
    latency: durationOfMs(record.latencyMs),
    grpcStatusCode: record.grpcCode,
    time: timestampFromMs(record.timeMs),
    input: { sha256: record.inputSha256, length: record.inputLength, text: spec.text ?? "" },
    instance: record.instance,
    source: [RecordSource.UNSPECIFIED, RecordSource.MODEL_SERVICE, RecordSource.MIRROR][record.source],
  };
}

/** A primary and a shadow record for one request, `gapMs` apart. */
export function pair(
  requestId: string,
  timeMs: number,
  primary: Partial<RecordSpec> = {},
  shadow: Partial<RecordSpec> = {},
  gapMs = 5,
): [RecordSpec, RecordSpec] {
  return [
    { requestId, role: "primary", timeMs, ...primary },
    { requestId, role: "shadow", timeMs: timeMs + gapMs, ...shadow },
  ];
}
