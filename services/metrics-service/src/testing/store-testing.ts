import Database from "better-sqlite3";
import { type ShadowStore, type StoredRecord, sourceOf, storedRole } from "../store.js";

/**
 * What tests read of a store besides the service's own API: every full record, the file's pages, a retention run to
 * the end. Reads go through a read-only connection of their own (WAL: they see every committed write), so that the
 * store itself keeps only what the service uses.
 */

/** A stored record with the feedback label of its request, if any. */
export interface RecordWithFeedback extends StoredRecord {
  feedbackLabel: string | null;
}

interface RecordRow {
  request_id: string;
  batch_index: number;
  role: number;
  model_name: string;
  model_version: string;
  label: string;
  probabilities: string;
  latency_ms: number;
  grpc_code: number;
  time_ms: number;
  received_ms: number;
  input_sha256: string;
  input_length: number;
  input_text: string | null;
  instance: string;
  source: number;
  feedback_label: string | null;
}

function toRecord(row: RecordRow): RecordWithFeedback {
  return {
    requestId: row.request_id,
    batchIndex: row.batch_index,
    role: storedRole(row.role),
    modelName: row.model_name,
    modelVersion: row.model_version,
    label: row.label,
    probabilities: JSON.parse(row.probabilities) as [string, number][],
    latencyMs: row.latency_ms,
    grpcCode: row.grpc_code,
    timeMs: row.time_ms,
    receivedMs: row.received_ms,
    inputSha256: row.input_sha256,
    inputLength: row.input_length,
    inputText: row.input_text,
    instance: row.instance,
    source: sourceOf(row.source),
    feedbackLabel: row.feedback_label,
  };
}

function reading<T>(store: ShadowStore, read: (db: Database.Database) => T): T {
  const db = new Database(store.file, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/**
 * Every full record whose prediction time is at or after `fromMs`, with its request's feedback label, in storage
 * order. There is no upper bound: a record stamped in the future by a skewed clock is included.
 */
export function recordsSince(store: ShadowStore, fromMs: number): RecordWithFeedback[] {
  return reading(store, (db) =>
    (
      db
        .prepare(
          `SELECT r.*, f.label AS feedback_label FROM records r
           LEFT JOIN feedback f ON f.request_id = r.request_id AND f.batch_index = r.batch_index
           WHERE r.time_ms >= ?`,
        )
        .all(fromMs) as RecordRow[]
    ).map(toRecord),
  );
}

/** The file's size in pages and its free pages. */
export function pages(store: ShadowStore): { total: number; free: number } {
  return reading(store, (db) => ({
    total: db.pragma("page_count", { simple: true }) as number,
    free: db.pragma("freelist_count", { simple: true }) as number,
  }));
}

/** Runs the retention to the end at once: records older than `beforeMs` (aligned down to a minute) and feedback before it. */
export function deleteOlderThan(
  store: ShadowStore,
  beforeMs: number,
  chunk = 5000,
): { records: number; feedback: number } {
  let records = 0;
  let feedback = 0;
  for (;;) {
    const step = store.retentionStep(beforeMs, chunk, 256);
    records += step.records;
    feedback += step.feedback;
    if (step.done) {
      return { records, feedback };
    }
  }
}
