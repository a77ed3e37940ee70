import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { scoreDelta } from "./stats.js";

/**
 * The store is the source of truth: every prediction record and every piece of feedback, in one SQLite file (WAL).
 * metrics-service is its single writer. Reports are computed from it at report time, so nothing in memory can
 * drift from what is stored, and a restart loses nothing that was acknowledged.
 */

/** Role numbers as in the proto (ROLE_PRIMARY = 1, ROLE_SHADOW = 2). */
export type RoleNumber = 1 | 2;

/** Record sources as in the proto: RECORD_SOURCE_UNSPECIFIED = 0, _MODEL_SERVICE = 1, _MIRROR = 2. */
export type SourceNumber = 0 | 1 | 2;

/** RECORD_SOURCE_MIRROR: a failure the mirroring caller saw; it outweighs the shadow's own record. */
export const SOURCE_MIRROR = 2;

/** One prediction record as stored. */
export interface StoredRecord {
  requestId: string;
  batchIndex: number;
  role: RoleNumber;
  modelName: string;
  modelVersion: string;
  /** Empty when the call failed. */
  label: string;
  /** [label, probability] pairs. */
  probabilities: [string, number][];
  latencyMs: number;
  grpcCode: number;
  /** When the prediction was made (ms since the epoch). */
  timeMs: number;
  /** When metrics-service stored it (ms since the epoch). */
  receivedMs: number;
  inputSha256: string;
  inputLength: number;
  /** Only with the raw-text opt-in; else null. */
  inputText: string | null;
  instance: string;
  /** Who reported it (0 unspecified, 1 the model-service, 2 the mirroring caller). */
  source: SourceNumber;
}

/** A stored record with the feedback label of its request, if any. */
export interface RecordWithFeedback extends StoredRecord {
  feedbackLabel: string | null;
}

/**
 * What the report reads of every record in its window: the lean columns only. Probabilities and inputs are read
 * for the few disagreements shown (`details`), and the score delta of a pair is computed once, at ingest.
 */
export interface ReportRow {
  requestId: string;
  batchIndex: number;
  role: RoleNumber;
  modelName: string;
  modelVersion: string;
  label: string;
  latencyMs: number;
  grpcCode: number;
  timeMs: number;
  /** The pair's score delta, set on both records once both succeeded; null before. */
  scoreDelta: number | null;
  feedbackLabel: string | null;
  /** The input's fingerprint: a pair whose fingerprints differ is a conflict, never compared. */
  inputSha256: string;
  source: SourceNumber;
}

/** A record's probabilities and input fingerprint, for a disagreement. */
export interface RecordDetail {
  probabilities: [string, number][];
  inputSha256: string;
  inputLength: number;
  inputText: string | null;
}

export interface StoreOptions {
  /** Directory of the database file; created if missing. */
  dataDir: string;
  /** SQLite `synchronous` under WAL: FULL survives power loss, NORMAL survives a killed process. */
  synchronous?: "FULL" | "NORMAL";
}

export interface InsertResult {
  /** Records stored: for the first time, or replacing a record of lower precedence. */
  accepted: number;
  duplicates: number;
  /** Records stored, by role. */
  acceptedByRole: Record<RoleNumber, number>;
  /** Of the accepted, the MIRROR records that replaced the shadow's own record of the same key. */
  replaced: number;
}

/** The file name of the database inside the data directory. */
export const DATABASE_FILE = "shadow.db";

const SCHEMA_VERSION = 3;

/** MIGRATIONS[v] takes the schema from version v to v + 1. */
const MIGRATIONS: string[][] = [
  [
    `CREATE TABLE records (
     request_id     TEXT    NOT NULL,
     batch_index    INTEGER NOT NULL,
     role           INTEGER NOT NULL CHECK (role IN (1, 2)),
     model_name     TEXT    NOT NULL,
     model_version  TEXT    NOT NULL,
     label          TEXT    NOT NULL,
     probabilities  TEXT    NOT NULL,
     latency_ms     REAL    NOT NULL,
     grpc_code      INTEGER NOT NULL,
     time_ms        INTEGER NOT NULL,
     received_ms    INTEGER NOT NULL,
     input_sha256   TEXT    NOT NULL,
     input_length   INTEGER NOT NULL,
     input_text     TEXT,
     instance       TEXT    NOT NULL,
     PRIMARY KEY (request_id, batch_index, role)
   )`,
    "CREATE INDEX records_by_time ON records (time_ms)",
    `CREATE TABLE feedback (
     request_id   TEXT    NOT NULL,
     batch_index  INTEGER NOT NULL,
     label        TEXT    NOT NULL,
     time_ms      INTEGER NOT NULL,
     PRIMARY KEY (request_id, batch_index)
   )`,
    "CREATE INDEX feedback_by_time ON feedback (time_ms)",
  ],
  // The score delta of a pair, computed once at ingest (backfilled below), so that reports need not parse every
  // record's probabilities.
  ["ALTER TABLE records ADD COLUMN score_delta REAL"],
  // Who reported a record (RecordSource): a MIRROR record replaces the shadow's own one. Records stored before
  // are UNSPECIFIED (0), which is treated as the model-service's own.
  ["ALTER TABLE records ADD COLUMN source INTEGER NOT NULL DEFAULT 0"],
];

const OK = "grpc_code = 0 AND label != ''";

const REPORT_ROWS_SQL = `SELECT r.request_id, r.batch_index, r.role, r.model_name, r.model_version, r.label, r.latency_ms,
    r.grpc_code, r.time_ms, r.score_delta, f.label, r.input_sha256, r.source
  FROM records r
  LEFT JOIN feedback f ON f.request_id = r.request_id AND f.batch_index = r.batch_index
  WHERE r.time_ms >= ?`;

const DETAILS_SQL = `SELECT role, probabilities, input_sha256, input_length, input_text FROM records
  WHERE request_id = ? AND batch_index = ?`;

type ReportRowTuple = [
  string,
  number,
  number,
  string,
  string,
  string,
  number,
  number,
  number,
  number | null,
  string | null,
  string,
  number,
];

const sourceOf = (n: number): SourceNumber => (n === 1 || n === 2 ? n : 0);

/** The labels named in stored probability vectors (JSON of [label, probability] pairs). */
function labelsIn(vectors: readonly string[]): Set<string> {
  const labels = new Set<string>();
  for (const vector of vectors) {
    for (const [label] of JSON.parse(vector) as [string, number][]) {
      labels.add(label);
    }
  }
  return labels;
}

function readReportRows(statement: Database.Statement, fromMs: number): ReportRow[] {
  return (statement.all(fromMs) as ReportRowTuple[]).map((r) => ({
    requestId: r[0],
    batchIndex: r[1],
    role: r[2] === 2 ? 2 : 1,
    modelName: r[3],
    modelVersion: r[4],
    label: r[5],
    latencyMs: r[6],
    grpcCode: r[7],
    timeMs: r[8],
    scoreDelta: r[9],
    feedbackLabel: r[10],
    inputSha256: r[11],
    source: sourceOf(r[12]),
  }));
}

function readDetails(
  statement: Database.Statement,
  requestId: string,
  batchIndex: number,
): Partial<Record<RoleNumber, RecordDetail>> {
  const rows = statement.all(requestId, batchIndex) as {
    role: number;
    probabilities: string;
    input_sha256: string;
    input_length: number;
    input_text: string | null;
  }[];
  const result: Partial<Record<RoleNumber, RecordDetail>> = {};
  for (const row of rows) {
    result[row.role === 2 ? 2 : 1] = {
      probabilities: JSON.parse(row.probabilities) as [string, number][],
      inputSha256: row.input_sha256,
      inputLength: row.input_length,
      inputText: row.input_text,
    };
  }
  return result;
}

/** What a report reads from a store. */
export interface ReportSource {
  /** Runs `read` in one read transaction, so that everything it reads is one consistent snapshot. */
  snapshot<T>(read: () => T): T;
  reportRows(fromMs: number): ReportRow[];
  details(requestId: string, batchIndex: number): Partial<Record<RoleNumber, RecordDetail>>;
}

/**
 * A read-only connection to the store's file, for computing reports off the writer's thread: WAL lets it read the
 * last committed state while the writer goes on.
 */
export class ShadowReader implements ReportSource {
  readonly #db: Database.Database;
  readonly #reportRows: Database.Statement;
  readonly #details: Database.Statement;

  constructor(file: string) {
    this.#db = new Database(file, { readonly: true, fileMustExist: true });
    this.#db.pragma("busy_timeout = 5000");
    this.#reportRows = this.#db.prepare(REPORT_ROWS_SQL).raw();
    this.#details = this.#db.prepare(DETAILS_SQL);
  }

  snapshot<T>(read: () => T): T {
    return this.#db.transaction(read)();
  }

  reportRows(fromMs: number): ReportRow[] {
    return readReportRows(this.#reportRows, fromMs);
  }

  details(requestId: string, batchIndex: number): Partial<Record<RoleNumber, RecordDetail>> {
    return readDetails(this.#details, requestId, batchIndex);
  }

  close(): void {
    this.#db.close();
  }
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
    role: row.role === 2 ? 2 : 1,
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

export class ShadowStore implements ReportSource {
  readonly file: string;
  readonly #db: Database.Database;
  readonly #insertRecord: Database.Statement;
  readonly #existingSource: Database.Statement;
  readonly #replaceRecord: Database.Statement;
  readonly #clearScoreDelta: Database.Statement;
  readonly #requestLabels: Database.Statement;
  readonly #recentLabels: Database.Statement;
  readonly #insertMany: (records: readonly StoredRecord[]) => InsertResult;
  readonly #upsertFeedback: Database.Statement;
  readonly #recordExists: Database.Statement;
  readonly #recordsSince: Database.Statement;
  readonly #reportRows: Database.Statement;
  readonly #details: Database.Statement;
  readonly #partner: Database.Statement;
  readonly #setScoreDelta: Database.Statement;
  readonly #deleteOldRecords: Database.Statement;
  readonly #deleteOldFeedback: Database.Statement;
  readonly #listeners = new Set<() => void>();
  #version = 0;

  constructor(options: StoreOptions) {
    mkdirSync(options.dataDir, { recursive: true });
    this.file = path.join(options.dataDir, DATABASE_FILE);
    this.#db = new Database(this.file);
    // WAL: readers never block the writer and a commit is one append; with synchronous FULL every acknowledged
    // write is on disk before the RPC answers.
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
    this.#db.pragma("busy_timeout = 5000");
    this.#migrate();

    this.#insertRecord = this.#db.prepare(
      `INSERT OR IGNORE INTO records (request_id, batch_index, role, model_name, model_version, label, probabilities,
         latency_ms, grpc_code, time_ms, received_ms, input_sha256, input_length, input_text, instance, source)
       VALUES (@requestId, @batchIndex, @role, @modelName, @modelVersion, @label, @probabilities, @latencyMs,
         @grpcCode, @timeMs, @receivedMs, @inputSha256, @inputLength, @inputText, @instance, @source)`,
    );
    this.#existingSource = this.#db
      .prepare("SELECT source FROM records WHERE request_id = ? AND batch_index = ? AND role = ?")
      .pluck();
    this.#replaceRecord = this.#db.prepare(
      `UPDATE records SET model_name = @modelName, model_version = @modelVersion, label = @label,
         probabilities = @probabilities, latency_ms = @latencyMs, grpc_code = @grpcCode, time_ms = @timeMs,
         received_ms = @receivedMs, input_sha256 = @inputSha256, input_length = @inputLength,
         input_text = @inputText, instance = @instance, source = @source, score_delta = NULL
       WHERE request_id = @requestId AND batch_index = @batchIndex AND role = @role`,
    );
    this.#clearScoreDelta = this.#db.prepare(
      "UPDATE records SET score_delta = NULL WHERE request_id = ? AND batch_index = ?",
    );
    this.#insertMany = this.#db.transaction((records: readonly StoredRecord[]) => {
      const acceptedByRole: Record<RoleNumber, number> = { 1: 0, 2: 0 };
      let replaced = 0;
      for (const record of records) {
        const row = { ...record, probabilities: JSON.stringify(record.probabilities) };
        let changes = this.#insertRecord.run(row).changes;
        if (changes === 0 && record.source === SOURCE_MIRROR) {
          // Precedence (README: "Ingest and feedback"): what the mirroring caller saw outweighs the shadow's own
          // record of the same call; the reverse never happens, and the same source twice is a duplicate.
          const existing = this.#existingSource.get(record.requestId, record.batchIndex, record.role);
          if (existing !== SOURCE_MIRROR) {
            changes = this.#replaceRecord.run(row).changes;
            this.#clearScoreDelta.run(record.requestId, record.batchIndex);
            replaced += changes;
          }
        }
        acceptedByRole[record.role] += changes;
        if (changes > 0 && record.grpcCode === 0 && record.label !== "") {
          this.#pairDelta(record);
        }
      }
      const accepted = acceptedByRole[1] + acceptedByRole[2];
      return { accepted, duplicates: records.length - accepted, acceptedByRole, replaced };
    });
    this.#requestLabels = this.#db
      .prepare("SELECT probabilities FROM records WHERE request_id = ? AND label != ''")
      .pluck();
    this.#recentLabels = this.#db
      .prepare(
        `SELECT model_name, model_version, MAX(time_ms), probabilities FROM
           (SELECT model_name, model_version, time_ms, probabilities FROM records WHERE label != ''
            ORDER BY time_ms DESC LIMIT ?)
         GROUP BY model_name, model_version`,
      )
      .raw();
    this.#upsertFeedback = this.#db.prepare(
      `INSERT INTO feedback (request_id, batch_index, label, time_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT (request_id, batch_index) DO UPDATE SET label = excluded.label, time_ms = excluded.time_ms`,
    );
    this.#recordExists = this.#db
      .prepare("SELECT 1 FROM records WHERE request_id = ? AND batch_index = ? LIMIT 1")
      .pluck();
    this.#partner = this.#db.prepare(
      `SELECT probabilities FROM records WHERE request_id = ? AND batch_index = ? AND role = ? AND ${OK}`,
    );
    this.#setScoreDelta = this.#db.prepare(
      "UPDATE records SET score_delta = ? WHERE request_id = ? AND batch_index = ?",
    );
    this.#reportRows = this.#db.prepare(REPORT_ROWS_SQL).raw();
    this.#details = this.#db.prepare(DETAILS_SQL);
    this.#recordsSince = this.#db.prepare(
      `SELECT r.*, f.label AS feedback_label FROM records r
       LEFT JOIN feedback f ON f.request_id = r.request_id AND f.batch_index = r.batch_index
       WHERE r.time_ms >= ?`,
    );
    // Deleted in chunks so that a large sweep never holds the write lock for long.
    this.#deleteOldRecords = this.#db.prepare(
      "DELETE FROM records WHERE rowid IN (SELECT rowid FROM records WHERE time_ms < ? LIMIT ?)",
    );
    this.#deleteOldFeedback = this.#db.prepare(
      "DELETE FROM feedback WHERE rowid IN (SELECT rowid FROM feedback WHERE time_ms < ? LIMIT ?)",
    );
  }

  #migrate(): void {
    const current = this.#db.pragma("user_version", { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw new Error(
        `${this.file} has schema version ${current}, newer than this metrics-service understands (${SCHEMA_VERSION})`,
      );
    }
    if (current === SCHEMA_VERSION) {
      return;
    }
    this.#db.transaction(() => {
      for (let version = current; version < SCHEMA_VERSION; version++) {
        for (const statement of MIGRATIONS[version] ?? []) {
          this.#db.exec(statement);
        }
      }
      if (current === 1) {
        this.#backfillScoreDeltas();
      }
      this.#db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
  }

  /** Version 1 → 2: computes the score delta of every pair already stored. */
  #backfillScoreDeltas(): void {
    const pairs = this.#db
      .prepare(
        `SELECT p.request_id, p.batch_index, p.probabilities, s.probabilities FROM records p
         JOIN records s ON s.request_id = p.request_id AND s.batch_index = p.batch_index AND s.role = 2
         WHERE p.role = 1 AND p.grpc_code = 0 AND p.label != '' AND s.grpc_code = 0 AND s.label != ''`,
      )
      .raw()
      .all() as [string, number, string, string][];
    const update = this.#db.prepare(
      "UPDATE records SET score_delta = ? WHERE request_id = ? AND batch_index = ?",
    );
    for (const [requestId, batchIndex, primary, shadow] of pairs) {
      update.run(scoreDelta(JSON.parse(primary), JSON.parse(shadow)), requestId, batchIndex);
    }
  }

  /** When a successful record's partner has succeeded too, stores the pair's score delta on both. */
  #pairDelta(record: StoredRecord): void {
    const partner = this.#partner.get(record.requestId, record.batchIndex, record.role === 1 ? 2 : 1) as
      | { probabilities: string }
      | undefined;
    if (partner) {
      const delta = scoreDelta(record.probabilities, JSON.parse(partner.probabilities) as [string, number][]);
      this.#setScoreDelta.run(delta, record.requestId, record.batchIndex);
    }
  }

  /** Increases with every write that changed something; watchers compare it. */
  get version(): number {
    return this.#version;
  }

  /** Calls `listener` after every write that changed something; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    this.#version++;
    for (const listener of this.#listeners) {
      listener();
    }
  }

  /** Stores records in one transaction; a record whose (request id, batch index, role) is known is ignored. */
  insertRecords(records: readonly StoredRecord[]): InsertResult {
    const result = this.#insertMany(records);
    if (result.accepted > 0) {
      this.#changed();
    }
    return result;
  }

  /** Stores the label a user says is right (the latest wins); returns whether predictions for it are known. */
  upsertFeedback(requestId: string, batchIndex: number, label: string, timeMs: number): boolean {
    this.#upsertFeedback.run(requestId, batchIndex, label, timeMs);
    this.#changed();
    return this.#recordExists.get(requestId, batchIndex) !== undefined;
  }

  /**
   * The lean rows of every record whose prediction time is at or after `fromMs`, with its request's feedback
   * label. There is no upper bound: a record stamped slightly in the future by a skewed clock still belongs to the
   * window that ends now.
   */
  reportRows(fromMs: number): ReportRow[] {
    return readReportRows(this.#reportRows, fromMs);
  }

  snapshot<T>(read: () => T): T {
    return this.#db.transaction(read)();
  }

  /** The probabilities and inputs of a request's records, by role. */
  details(requestId: string, batchIndex: number): Partial<Record<RoleNumber, RecordDetail>> {
    return readDetails(this.#details, requestId, batchIndex);
  }

  /**
   * Every full record whose prediction time is at or after `fromMs`, with its request's feedback label. There is no upper
   * bound: a record stamped slightly in the future by a skewed clock still belongs to the window that ends now.
   */
  recordsSince(fromMs: number): RecordWithFeedback[] {
    return (this.#recordsSince.all(fromMs) as RecordRow[]).map(toRecord);
  }

  /** Deletes records older than `beforeMs` (prediction time) and feedback submitted before it. */
  deleteOlderThan(beforeMs: number, chunk = 5000): { records: number; feedback: number } {
    let records = 0;
    let feedback = 0;
    for (;;) {
      const deleted = this.#deleteOldRecords.run(beforeMs, chunk).changes;
      records += deleted;
      if (deleted < chunk) {
        break;
      }
    }
    for (;;) {
      const deleted = this.#deleteOldFeedback.run(beforeMs, chunk).changes;
      feedback += deleted;
      if (deleted < chunk) {
        break;
      }
    }
    if (records + feedback > 0) {
      this.#changed();
    }
    return { records, feedback };
  }

  /** The labels in the probabilities of a request's records (any batch index, either role); empty when unknown. */
  requestLabels(requestId: string): Set<string> {
    return labelsIn(this.#requestLabels.all(requestId) as string[]);
  }

  /**
   * The labels of each model (name and version) among the newest `limit` successful records, with the time of its
   * newest record: the models seen recently, for checking feedback about a request not reported yet.
   */
  recentModelLabels(limit = 2000): { model: string; labels: Set<string>; lastMs: number }[] {
    return (this.#recentLabels.all(limit) as [string, string, number, string][]).map(
      ([name, version, lastMs, probabilities]) => ({
        model: `${name}@${version}`,
        labels: labelsIn([probabilities]),
        lastMs,
      }),
    );
  }

  /** Row counts, for logs and tests. */
  counts(): { records: number; feedback: number } {
    return {
      records: this.#db.prepare("SELECT COUNT(*) FROM records").pluck().get() as number,
      feedback: this.#db.prepare("SELECT COUNT(*) FROM feedback").pluck().get() as number,
    };
  }

  /** Checkpoints the WAL into the main file and closes the database. */
  close(): void {
    if (this.#db.open) {
      this.#db.pragma("wal_checkpoint(TRUNCATE)");
      this.#db.close();
    }
  }
}
