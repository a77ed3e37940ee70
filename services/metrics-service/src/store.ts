import { mkdirSync } from "node:fs";
import path from "node:path";
import { Role } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import Database from "better-sqlite3";
import { Aggregates, notableOf, tallyAggregates } from "./aggregates.js";
import {
  finishReport,
  type NotablePair,
  type ReportOptions,
  type RequestRecords,
  resolveCandidate,
  windowStartMs,
} from "./report.js";
import { scoreDelta } from "./stats.js";

/**
 * The store is the source of truth: every prediction record and every piece of feedback, in one SQLite file (WAL).
 * metrics-service is its single writer. The report's numbers are kept as aggregates in time buckets (aggregates.ts),
 * updated in the same transaction as the records they count and persisted with them, so a report costs the same at
 * 1 M pairs as at 1 k, and a restart loses nothing that was acknowledged.
 */

/** The roles a stored record can have: the generated enum's PRIMARY and SHADOW (never UNSPECIFIED). */
export type StoredRole = Role.PRIMARY | Role.SHADOW;

/** Both stored roles, primary first. */
export const STORED_ROLES: readonly StoredRole[] = [Role.PRIMARY, Role.SHADOW];

/** A stored role from its column (1 primary, 2 shadow, as in the proto). */
export const storedRole = (n: number): StoredRole => (n === Role.SHADOW ? Role.SHADOW : Role.PRIMARY);

/** Record sources as in the proto: RECORD_SOURCE_UNSPECIFIED = 0, _MODEL_SERVICE = 1, _MIRROR = 2. */
export type SourceNumber = 0 | 1 | 2;

/** RECORD_SOURCE_MIRROR: a failure the mirroring caller saw; it outweighs the shadow's own record. */
export const SOURCE_MIRROR = 2;

/** One prediction record as stored. */
export interface StoredRecord {
  requestId: string;
  batchIndex: number;
  role: StoredRole;
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

/**
 * What the report reads of every record in its window: the lean columns only. Probabilities and inputs are read
 * for the few disagreements shown (`details`), and the score delta of a pair is computed once, at ingest.
 */
export interface ReportRow {
  requestId: string;
  batchIndex: number;
  role: StoredRole;
  modelName: string;
  modelVersion: string;
  label: string;
  latencyMs: number;
  grpcCode: number;
  timeMs: number;
  /** The pair's score delta, set on the SHADOW record once both calls succeeded; null before (and on primaries). */
  scoreDelta: number | null;
  feedbackLabel: string | null;
  /** The input's fingerprint: a pair whose fingerprints differ is a conflict, never compared. */
  inputSha256: string;
  source: SourceNumber;
  /** The candidate a SHADOW record belongs to (its model name); "" for a PRIMARY record. */
  candidate: string;
}

/** The candidate a record belongs to: a SHADOW record's model name; none ("") for the primary's. */
export const candidateOf = (record: Pick<StoredRecord, "role" | "modelName">): string =>
  record.role === Role.SHADOW ? record.modelName : "";

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
  /** The join window the aggregates are kept for (default 60 s); reports with another one rebuild them. */
  joinWindowMs?: number;
}

export interface InsertResult {
  /** Records stored: for the first time, or replacing a record of lower precedence. */
  accepted: number;
  duplicates: number;
  /** Records stored, by role. */
  acceptedByRole: Record<StoredRole, number>;
  /** Of the accepted, the MIRROR records that replaced the shadow's own record of the same key. */
  replaced: number;
  /**
   * SHADOW records not stored because their candidate is new while the cap of candidates is reached, by candidate
   * (absent when none was).
   */
  refused?: Map<string, number>;
}

/** The file name of the database inside the data directory. */
export const DATABASE_FILE = "shadow.db";

const SCHEMA_VERSION = 6;

/** Files older than this need their aggregates recounted from the records when they are migrated. */
const AGGREGATES_SINCE = 5;

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
  // The report's aggregates (one row per time bucket and level), the requests shown in its lists (disagreements
  // and conflicts, by the primary's time), and settings the aggregates depend on. Filled from the records by
  // #rebuildAggregates after the migration.
  [
    `CREATE TABLE IF NOT EXISTS aggregates (
       level    INTEGER NOT NULL,
       start_ms INTEGER NOT NULL,
       data     TEXT    NOT NULL,
       PRIMARY KEY (level, start_ms)
     ) WITHOUT ROWID`,
    `CREATE TABLE IF NOT EXISTS notable (
       request_id  TEXT    NOT NULL,
       batch_index INTEGER NOT NULL,
       kind        INTEGER NOT NULL,
       time_ms     INTEGER NOT NULL,
       PRIMARY KEY (request_id, batch_index)
     ) WITHOUT ROWID`,
    "CREATE INDEX IF NOT EXISTS notable_by_time ON notable (kind, time_ms)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
  ],
  // Several candidates (issue 15): a SHADOW record belongs to the candidate its model name names, and the key is
  // (request id, batch index, role, candidate), so that each candidate's record joins the primary's. The table is
  // copied once in key order (SQLite cannot change a primary key in place); a pair's score delta now lives on the
  // shadow's record only. The aggregates and the notable list gain the candidate and are recounted after this.
  [
    `CREATE TABLE records_v5 (
     request_id     TEXT    NOT NULL,
     batch_index    INTEGER NOT NULL,
     role           INTEGER NOT NULL CHECK (role IN (1, 2)),
     candidate      TEXT    NOT NULL,
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
     score_delta    REAL,
     source         INTEGER NOT NULL DEFAULT 0,
     CHECK (role = 2 OR candidate = ''),
     PRIMARY KEY (request_id, batch_index, role, candidate)
   )`,
    `INSERT INTO records_v5 (request_id, batch_index, role, candidate, model_name, model_version, label,
       probabilities, latency_ms, grpc_code, time_ms, received_ms, input_sha256, input_length, input_text, instance,
       score_delta, source)
     SELECT request_id, batch_index, role, CASE role WHEN 2 THEN model_name ELSE '' END, model_name, model_version,
       label, probabilities, latency_ms, grpc_code, time_ms, received_ms, input_sha256, input_length, input_text,
       instance, CASE role WHEN 2 THEN score_delta END, source
     FROM records ORDER BY request_id, batch_index, role`,
    "DROP TABLE records",
    "ALTER TABLE records_v5 RENAME TO records",
    "CREATE INDEX records_by_time ON records (time_ms)",
    "DROP TABLE aggregates",
    `CREATE TABLE aggregates (
       scope     INTEGER NOT NULL,
       candidate TEXT    NOT NULL,
       level     INTEGER NOT NULL,
       start_ms  INTEGER NOT NULL,
       data      TEXT    NOT NULL,
       PRIMARY KEY (scope, candidate, level, start_ms)
     ) WITHOUT ROWID`,
    "DROP TABLE notable",
    `CREATE TABLE notable (
       request_id  TEXT    NOT NULL,
       batch_index INTEGER NOT NULL,
       candidate   TEXT    NOT NULL,
       kind        INTEGER NOT NULL,
       time_ms     INTEGER NOT NULL,
       PRIMARY KEY (request_id, batch_index, candidate)
     ) WITHOUT ROWID`,
    "CREATE INDEX notable_by_time ON notable (candidate, kind, time_ms)",
  ],
  // The cap on candidates (METRICS_SERVICE_MAX_CANDIDATES): how many SHADOW records each candidate has stored, kept
  // in the same transactions as the records, so that a start knows the candidates without reading every record.
  // Counted here once, with one pass over the records (the aggregates need no recount).
  [
    `CREATE TABLE IF NOT EXISTS candidates (
       name    TEXT    NOT NULL PRIMARY KEY,
       records INTEGER NOT NULL
     ) WITHOUT ROWID`,
    `INSERT OR REPLACE INTO candidates (name, records)
     SELECT candidate, COUNT(*) FROM records WHERE role = 2 GROUP BY candidate`,
  ],
];

/** The aggregates' scopes (store.ts keeps one part per scope; a candidate's report sums two). */
const SCOPE_PRIMARY = 0;
const SCOPE_CANDIDATE = 1;

/** A stored record's lean columns and its probabilities (JSON), as the aggregates' bookkeeping reads it. */
interface StateRow extends ReportRow {
  probabilitiesJson: string;
}

/** A request's stored records: the primary's, each candidate's (by candidate), and its feedback label. */
interface RequestState {
  primary?: StateRow;
  shadows: Map<string, StateRow>;
  feedbackLabel: string | null;
}

/** What one candidate's report sees of a request: the primary's record and that candidate's. */
function viewOf(state: RequestState, candidate: string): RequestRecords {
  const view: RequestRecords = {};
  if (state.primary) {
    view.primary = state.primary;
  }
  const shadow = state.shadows.get(candidate);
  if (shadow) {
    view.shadow = shadow;
  }
  return view;
}

/** The primary's record alone: what every candidate's report sees of a request before the candidate's record. */
const primaryOnly = (state: RequestState): RequestRecords =>
  state.primary ? { primary: state.primary } : {};

const COLUMNS = `r.request_id, r.batch_index, r.role, r.model_name, r.model_version, r.label, r.latency_ms,
    r.grpc_code, r.time_ms, r.score_delta, f.label, r.input_sha256, r.source, r.candidate`;

const STATE_SQL = `SELECT ${COLUMNS}, r.probabilities
  FROM records r
  LEFT JOIN feedback f ON f.request_id = r.request_id AND f.batch_index = r.batch_index
  WHERE r.request_id = ? AND r.batch_index = ?`;

const ALL_STATES_SQL = `SELECT ${COLUMNS}, r.probabilities
  FROM records r
  LEFT JOIN feedback f ON f.request_id = r.request_id AND f.batch_index = r.batch_index
  ORDER BY r.request_id, r.batch_index`;

const REPORT_ROWS_SQL = `SELECT ${COLUMNS}
  FROM records r
  LEFT JOIN feedback f ON f.request_id = r.request_id AND f.batch_index = r.batch_index
  WHERE r.time_ms >= ?`;

const DETAILS_SQL = `SELECT role, probabilities, input_sha256, input_length, input_text FROM records
  WHERE request_id = ? AND batch_index = ? AND (role = 1 OR candidate = ?)`;

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
  string,
];

export const sourceOf = (n: number): SourceNumber => (n === 1 || n === 2 ? n : 0);

function stateRowOf(r: [...ReportRowTuple, string]): StateRow {
  return { ...reportRowOf(r), probabilitiesJson: r[14] };
}

/** A copy of a state (its own map of candidates) with another feedback label on its records. */
function withFeedback(state: RequestState, label: string | null): RequestState {
  const next: RequestState = { shadows: new Map(), feedbackLabel: label };
  if (state.primary) {
    next.primary = { ...state.primary, feedbackLabel: label };
  }
  for (const [candidate, shadow] of state.shadows) {
    next.shadows.set(candidate, { ...shadow, feedbackLabel: label });
  }
  return next;
}

/** A copy of a state sharing its records (changes then replace records, so a changed one is a new object). */
const copyOf = (state: RequestState): RequestState => ({ ...state, shadows: new Map(state.shadows) });

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

/** A stored record's columns, in the order of ReportRowTuple, as a ReportRow. */
function reportRowOf(r: readonly [...ReportRowTuple, ...unknown[]]): ReportRow {
  return {
    requestId: r[0],
    batchIndex: r[1],
    role: storedRole(r[2]),
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
    candidate: r[13],
  };
}

function readReportRows(statement: Database.Statement, fromMs: number): ReportRow[] {
  return (statement.all(fromMs) as ReportRowTuple[]).map(reportRowOf);
}

function readDetails(
  statement: Database.Statement,
  requestId: string,
  batchIndex: number,
  candidate: string,
): Partial<Record<StoredRole, RecordDetail>> {
  const rows = statement.all(requestId, batchIndex, candidate) as {
    role: number;
    probabilities: string;
    input_sha256: string;
    input_length: number;
    input_text: string | null;
  }[];
  const result: Partial<Record<StoredRole, RecordDetail>> = {};
  for (const row of rows) {
    result[storedRole(row.role)] = {
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
  /** The probabilities and inputs of a request's primary record and of one candidate's record. */
  details(
    requestId: string,
    batchIndex: number,
    candidate: string,
  ): Partial<Record<StoredRole, RecordDetail>>;
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

  details(
    requestId: string,
    batchIndex: number,
    candidate: string,
  ): Partial<Record<StoredRole, RecordDetail>> {
    return readDetails(this.#details, requestId, batchIndex, candidate);
  }

  close(): void {
    this.#db.close();
  }
}

/** What one retention step did; `done` when nothing older than the cut is left. */
export interface RetentionStep {
  records: number;
  feedback: number;
  done: boolean;
}

/** The minute a retention cut falls in: buckets before it are dropped whole. */
export const retentionCutMs = (beforeMs: number): number => Math.floor(beforeMs / 60_000) * 60_000;

export class ShadowStore implements ReportSource {
  readonly file: string;
  readonly #db: Database.Database;
  readonly #insertRecord: Database.Statement;
  readonly #replaceRecord: Database.Statement;
  readonly #state: Database.Statement;
  readonly #feedbackOf: Database.Statement;
  readonly #requestLabels: Database.Statement;
  readonly #recentLabels: Database.Statement;
  readonly #insertMany: (records: readonly StoredRecord[], maxCandidates: number) => InsertResult;
  readonly #upsertFeedback: Database.Statement;
  readonly #reportRows: Database.Statement;
  readonly #details: Database.Statement;
  readonly #setScoreDelta: Database.Statement;
  readonly #newestShadowOwn: Database.Statement;
  readonly #primaryRange: Database.Statement;
  readonly #deleteOne: Database.Statement;
  readonly #putBucket: Database.Statement;
  readonly #dropBucket: Database.Statement;
  readonly #putNotable: Database.Statement;
  readonly #dropNotable: Database.Statement;
  readonly #notableSince: Database.Statement;
  readonly #listeners = new Set<() => void>();
  /**
   * The aggregates in parts (README: "Several candidates"): what the primary's records count on their own, and for
   * each candidate what its records change in that (pairs instead of lone primaries, its own lone records…). A
   * candidate's report sums the primary's part and its own, so a candidate that appears late needs no recount of
   * the primary's records, and a primary record costs one update whatever the number of candidates.
   */
  #primaryPart: Aggregates;
  #candidateParts = new Map<string, Aggregates>();
  /**
   * The candidates stored: how many SHADOW records each has (a candidate with none is not in it), as persisted in
   * the `candidates` table; the candidates whose count changed since it was last written.
   */
  #candidateRecords = new Map<string, number>();
  #touchedCandidates = new Set<string>();
  readonly #putCandidate: Database.Statement;
  readonly #dropCandidate: Database.Statement;
  #joinWindowMs: number;
  /** While the aggregates are rebuilt (reading the records), notable writes wait here. */
  #deferredNotable: [string, number, string, number, number][] | undefined;
  #version = 0;

  constructor(options: StoreOptions) {
    mkdirSync(options.dataDir, { recursive: true });
    this.file = path.join(options.dataDir, DATABASE_FILE);
    this.#db = new Database(this.file);
    // A new file reclaims the pages retention frees (PRAGMA incremental_vacuum, in small steps); the mode can only
    // be chosen before the first table exists (a file made by an older version keeps its size, README).
    if ((this.#db.pragma("user_version", { simple: true }) as number) === 0) {
      this.#db.pragma("auto_vacuum = INCREMENTAL");
    }
    // WAL: readers never block the writer and a commit is one append; with synchronous FULL every acknowledged
    // write is on disk before the RPC answers.
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
    this.#db.pragma("busy_timeout = 5000");
    this.#joinWindowMs = options.joinWindowMs ?? 60_000;
    const migrated = this.#migrate();

    this.#insertRecord = this.#db.prepare(
      `INSERT OR IGNORE INTO records (request_id, batch_index, role, candidate, model_name, model_version, label,
         probabilities, latency_ms, grpc_code, time_ms, received_ms, input_sha256, input_length, input_text, instance,
         source)
       VALUES (@requestId, @batchIndex, @role, @candidate, @modelName, @modelVersion, @label, @probabilities,
         @latencyMs, @grpcCode, @timeMs, @receivedMs, @inputSha256, @inputLength, @inputText, @instance, @source)`,
    );
    this.#replaceRecord = this.#db.prepare(
      `UPDATE records SET model_name = @modelName, model_version = @modelVersion, label = @label,
         probabilities = @probabilities, latency_ms = @latencyMs, grpc_code = @grpcCode, time_ms = @timeMs,
         received_ms = @receivedMs, input_sha256 = @inputSha256, input_length = @inputLength,
         input_text = @inputText, instance = @instance, source = @source, score_delta = NULL
       WHERE request_id = @requestId AND batch_index = @batchIndex AND role = @role AND candidate = @candidate`,
    );
    this.#state = this.#db.prepare(STATE_SQL).raw();
    this.#feedbackOf = this.#db
      .prepare("SELECT label FROM feedback WHERE request_id = ? AND batch_index = ?")
      .pluck();
    this.#setScoreDelta = this.#db.prepare(
      "UPDATE records SET score_delta = ? WHERE request_id = ? AND batch_index = ? AND role = 2 AND candidate = ?",
    );
    this.#newestShadowOwn = this.#db
      .prepare(
        `SELECT MAX(time_ms) FROM records
         WHERE time_ms >= ? AND time_ms < ? AND role = 2 AND candidate = ? AND source != ${SOURCE_MIRROR}`,
      )
      .pluck();
    this.#primaryRange = this.#db
      .prepare(
        "SELECT MIN(time_ms), MAX(time_ms) FROM records WHERE time_ms >= ? AND time_ms < ? AND role = 1",
      )
      .raw();
    this.#deleteOne = this.#db.prepare(
      "DELETE FROM records WHERE request_id = ? AND batch_index = ? AND role = ? AND candidate = ?",
    );
    this.#putBucket = this.#db.prepare(
      "INSERT OR REPLACE INTO aggregates (scope, candidate, level, start_ms, data) VALUES (?, ?, ?, ?, ?)",
    );
    this.#dropBucket = this.#db.prepare(
      "DELETE FROM aggregates WHERE scope = ? AND candidate = ? AND level = ? AND start_ms = ?",
    );
    this.#putNotable = this.#db.prepare(
      "INSERT OR REPLACE INTO notable (request_id, batch_index, candidate, kind, time_ms) VALUES (?, ?, ?, ?, ?)",
    );
    this.#dropNotable = this.#db.prepare(
      "DELETE FROM notable WHERE request_id = ? AND batch_index = ? AND candidate = ?",
    );
    this.#notableSince = this.#db
      .prepare(
        `SELECT request_id, batch_index FROM notable WHERE candidate = ? AND kind = ? AND time_ms >= ?
         ORDER BY time_ms DESC LIMIT ?`,
      )
      .raw();
    this.#putCandidate = this.#db.prepare("INSERT OR REPLACE INTO candidates (name, records) VALUES (?, ?)");
    this.#dropCandidate = this.#db.prepare("DELETE FROM candidates WHERE name = ?");
    this.#insertMany = this.#db.transaction((records: readonly StoredRecord[], maxCandidates: number) => {
      const acceptedByRole: Record<StoredRole, number> = { [Role.PRIMARY]: 0, [Role.SHADOW]: 0 };
      let replaced = 0;
      const refused = new Map<string, number>();
      for (const record of records) {
        const candidate = candidateOf(record);
        // The cap (README: "Several candidates"): a new candidate is refused while the cap is reached; records of a
        // known one, and the primary's, never are. Checked before anything is read, so a storm of names costs a map
        // lookup each.
        if (
          record.role === Role.SHADOW &&
          !this.#candidateRecords.has(candidate) &&
          this.#candidateRecords.size >= maxCandidates
        ) {
          refused.set(candidate, (refused.get(candidate) ?? 0) + 1);
          continue;
        }
        const before = this.#loadState(record.requestId, record.batchIndex);
        const existing = record.role === Role.PRIMARY ? before.primary : before.shadows.get(candidate);
        const row = { ...record, candidate, probabilities: JSON.stringify(record.probabilities) };
        if (existing) {
          // Precedence (README: "Ingest and feedback"): what the mirroring caller saw outweighs the shadow's own
          // record of the same call; the reverse never happens, and the same source twice is a duplicate.
          if (record.source !== SOURCE_MIRROR || existing.source === SOURCE_MIRROR) {
            continue;
          }
          if (this.#replaceRecord.run(row).changes === 0) {
            continue;
          }
          replaced++;
        } else if (this.#insertRecord.run(row).changes === 0) {
          continue;
        } else if (record.role === Role.SHADOW) {
          this.#countCandidate(candidate, 1);
        }
        acceptedByRole[record.role]++;
        const after = copyOf(before);
        const stored: StateRow = {
          requestId: record.requestId,
          batchIndex: record.batchIndex,
          role: record.role,
          modelName: record.modelName,
          modelVersion: record.modelVersion,
          label: record.label,
          latencyMs: record.latencyMs,
          grpcCode: record.grpcCode,
          timeMs: record.timeMs,
          scoreDelta: null,
          feedbackLabel: before.feedbackLabel,
          inputSha256: record.inputSha256,
          source: record.source,
          candidate,
          probabilitiesJson: row.probabilities,
        };
        // The score delta of each pair this record completes, computed once here (on the shadow's record), so
        // that reports never parse probabilities.
        const deltaOf = (primary: StateRow, shadow: StateRow): number | null =>
          okRow(primary) && okRow(shadow)
            ? scoreDelta(
                JSON.parse(primary.probabilitiesJson) as [string, number][],
                JSON.parse(shadow.probabilitiesJson) as [string, number][],
              )
            : null;
        if (record.role === Role.PRIMARY) {
          after.primary = stored;
          for (const [name, shadow] of before.shadows) {
            const delta = deltaOf(stored, shadow);
            if (delta !== shadow.scoreDelta) {
              this.#setScoreDelta.run(delta, record.requestId, record.batchIndex, name);
              after.shadows.set(name, { ...shadow, scoreDelta: delta });
            }
          }
          this.#primaryPart.primaryStored(record.timeMs);
        } else {
          if (after.primary) {
            stored.scoreDelta = deltaOf(after.primary, stored);
            if (stored.scoreDelta !== null) {
              this.#setScoreDelta.run(stored.scoreDelta, record.requestId, record.batchIndex, candidate);
            }
          }
          after.shadows.set(candidate, stored);
          const part = this.#candidatePart(candidate);
          if (existing && existing.source !== SOURCE_MIRROR) {
            part.shadowOwnStored(existing.timeMs, -1);
          }
          if (record.source !== SOURCE_MIRROR) {
            part.shadowOwnStored(record.timeMs, 1);
          }
        }
        this.#transition(before, after);
      }
      this.#persistTouched();
      const accepted = acceptedByRole[Role.PRIMARY] + acceptedByRole[Role.SHADOW];
      let refusedCount = 0;
      for (const n of refused.values()) {
        refusedCount += n;
      }
      return {
        accepted,
        duplicates: records.length - accepted - refusedCount,
        acceptedByRole,
        replaced,
        ...(refused.size > 0 ? { refused } : {}),
      };
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
    this.#reportRows = this.#db.prepare(REPORT_ROWS_SQL).raw();
    this.#details = this.#db.prepare(DETAILS_SQL);
    this.#primaryPart = this.#newAggregates(this.#joinWindowMs, undefined);
    const storedJoin = this.#meta("join_window_ms");
    if (migrated || storedJoin !== String(this.#joinWindowMs)) {
      this.#rebuildAggregates();
    } else {
      this.#loadAggregates();
    }
  }

  /** An empty part: the primary's (candidate undefined) or a candidate's. */
  #newAggregates(joinWindowMs: number, candidate: string | undefined): Aggregates {
    const part = new Aggregates(
      joinWindowMs,
      (from, to) => {
        const newest = this.#newestShadowOwn.get(from, to, candidate ?? "") as number | null;
        return newest ?? undefined;
      },
      (from, to) => {
        const [first, last] = this.#primaryRange.get(from, to) as [number | null, number | null];
        return first === null || last === null ? undefined : [first, last];
      },
    );
    part.floorMs = this.#primaryPart?.floorMs ?? Number.NEGATIVE_INFINITY;
    return part;
  }

  /** A candidate's part, created empty when the candidate is new. */
  #candidatePart(candidate: string): Aggregates {
    let part = this.#candidateParts.get(candidate);
    if (!part) {
      part = this.#newAggregates(this.#joinWindowMs, candidate);
      this.#candidateParts.set(candidate, part);
    }
    return part;
  }

  /** Adds `delta` to a candidate's count of stored SHADOW records; at 0 it is no longer a stored candidate. */
  #countCandidate(candidate: string, delta: number): void {
    const records = (this.#candidateRecords.get(candidate) ?? 0) + delta;
    if (records > 0) {
      this.#candidateRecords.set(candidate, records);
    } else {
      this.#candidateRecords.delete(candidate);
    }
    this.#touchedCandidates.add(candidate);
  }

  /** Every part, with its scope and candidate as persisted. */
  #parts(): [number, string, Aggregates][] {
    return [
      [SCOPE_PRIMARY, "", this.#primaryPart],
      ...[...this.#candidateParts].map(([name, part]): [number, string, Aggregates] => [
        SCOPE_CANDIDATE,
        name,
        part,
      ]),
    ];
  }

  #meta(key: string): string | undefined {
    return this.#db.prepare("SELECT value FROM meta WHERE key = ?").pluck().get(key) as string | undefined;
  }

  #setMeta(key: string, value: string): void {
    this.#db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(key, value);
  }

  /** Returns whether the aggregates must be rebuilt from the records (the file was older than AGGREGATES_SINCE). */
  #migrate(): boolean {
    const current = this.#db.pragma("user_version", { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw new Error(
        `${this.file} has schema version ${current}, newer than this metrics-service understands (${SCHEMA_VERSION})`,
      );
    }
    if (current === SCHEMA_VERSION) {
      return false;
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
    return current < AGGREGATES_SINCE;
  }

  /** Version 1 → 2: computes the score delta of every pair already stored (on the shadow's record). */
  #backfillScoreDeltas(): void {
    const pairs = this.#db
      .prepare(
        `SELECT p.request_id, p.batch_index, s.candidate, p.probabilities, s.probabilities FROM records p
         JOIN records s ON s.request_id = p.request_id AND s.batch_index = p.batch_index AND s.role = 2
         WHERE p.role = 1 AND p.grpc_code = 0 AND p.label != '' AND s.grpc_code = 0 AND s.label != ''`,
      )
      .raw()
      .all() as [string, number, string, string, string][];
    const update = this.#db.prepare(
      "UPDATE records SET score_delta = ? WHERE request_id = ? AND batch_index = ? AND role = 2 AND candidate = ?",
    );
    for (const [requestId, batchIndex, candidate, primary, shadow] of pairs) {
      update.run(scoreDelta(JSON.parse(primary), JSON.parse(shadow)), requestId, batchIndex, candidate);
    }
  }

  /**
   * Recounts the aggregates and the notable list from every stored record (after a migration, or when the join
   * window changed): one pass over the records in key order.
   */
  #rebuildAggregates(): void {
    this.#db.transaction(() => {
      this.#db.exec("DELETE FROM aggregates; DELETE FROM notable; DELETE FROM candidates;");
      const floor = this.#meta("floor_ms");
      this.#candidateParts = new Map();
      this.#candidateRecords = new Map();
      this.#touchedCandidates = new Set();
      this.#primaryPart = this.#newAggregates(this.#joinWindowMs, undefined);
      if (floor !== undefined) {
        this.#primaryPart.floorMs = Number(floor);
      }
      const rows = this.#db.prepare(ALL_STATES_SQL).raw().iterate() as IterableIterator<
        [...ReportRowTuple, string]
      >;
      let current: RequestState | undefined;
      let key = "";
      this.#deferredNotable = [];
      const flush = () => {
        if (current) {
          this.#transition({ shadows: new Map(), feedbackLabel: null }, current);
        }
      };
      for (const tuple of rows) {
        const row = stateRowOf(tuple);
        const rowKey = `${row.requestId}\u0000${row.batchIndex}`;
        if (rowKey !== key || !current) {
          flush();
          key = rowKey;
          current = { shadows: new Map(), feedbackLabel: row.feedbackLabel };
        }
        if (row.role === Role.PRIMARY) {
          current.primary = row;
          this.#primaryPart.primaryStored(row.timeMs);
        } else {
          current.shadows.set(row.candidate, row);
          this.#countCandidate(row.candidate, 1);
          if (row.source !== SOURCE_MIRROR) {
            this.#candidatePart(row.candidate).shadowOwnStored(row.timeMs, 1);
          }
        }
      }
      flush();
      const notable = this.#deferredNotable;
      this.#deferredNotable = undefined;
      for (const row of notable) {
        this.#putNotable.run(...row);
      }
      this.#persistTouched();
      this.#setMeta("join_window_ms", String(this.#joinWindowMs));
    })();
  }

  #loadAggregates(): void {
    for (const [name, records] of this.#db
      .prepare("SELECT name, records FROM candidates")
      .raw()
      .iterate() as IterableIterator<[string, number]>) {
      this.#candidateRecords.set(name, records);
    }
    const floor = this.#meta("floor_ms");
    if (floor !== undefined) {
      this.#primaryPart.floorMs = Number(floor);
    }
    for (const [scope, candidate, level, start, data] of this.#db
      .prepare("SELECT scope, candidate, level, start_ms, data FROM aggregates")
      .raw()
      .iterate() as IterableIterator<[number, string, number, number, string]>) {
      const part = scope === SCOPE_PRIMARY ? this.#primaryPart : this.#candidatePart(candidate);
      part.load(level, start, data);
    }
  }

  /** The aggregates' join window; a different one recounts them from the records (once). */
  useJoinWindow(joinWindowMs: number): void {
    if (joinWindowMs !== this.#joinWindowMs) {
      this.#joinWindowMs = joinWindowMs;
      this.#rebuildAggregates();
    }
  }

  #loadState(requestId: string, batchIndex: number): RequestState {
    const rows = this.#state.all(requestId, batchIndex) as [...ReportRowTuple, string][];
    if (rows.length === 0) {
      return {
        shadows: new Map(),
        feedbackLabel: (this.#feedbackOf.get(requestId, batchIndex) as string | undefined) ?? null,
      };
    }
    const state: RequestState = { shadows: new Map(), feedbackLabel: null };
    for (const tuple of rows) {
      const row = stateRowOf(tuple);
      state.feedbackLabel = row.feedbackLabel;
      if (row.role === Role.PRIMARY) {
        state.primary = row;
      } else {
        state.shadows.set(row.candidate, row);
      }
    }
    return state;
  }

  /**
   * Moves a request's counts from one state to the next (the aggregates and the notable list): the primary's part
   * when the primary record came or went, and the part of each candidate whose view of the request changed, by
   * what its record changes in the primary's own count.
   */
  #transition(before: RequestState, after: RequestState): void {
    const primaryChanged = before.primary !== after.primary;
    if (primaryChanged && (before.primary === undefined) !== (after.primary === undefined)) {
      this.#primaryPart.contribute(primaryOnly(before), -1);
      this.#primaryPart.contribute(primaryOnly(after), 1);
    }
    const feedbackChanged = before.feedbackLabel !== after.feedbackLabel;
    for (const candidate of new Set([...before.shadows.keys(), ...after.shadows.keys()])) {
      const was = before.shadows.get(candidate);
      const now = after.shadows.get(candidate);
      if (!primaryChanged && !feedbackChanged && was === now) {
        continue;
      }
      const part = this.#candidatePart(candidate);
      part.contributeDelta(viewOf(before, candidate), -1);
      part.contributeDelta(viewOf(after, candidate), 1);
      this.#note(candidate, viewOf(before, candidate), viewOf(after, candidate));
    }
  }

  /** Keeps the notable list (disagreements and conflicts shown) of a candidate up to date for one request. */
  #note(candidate: string, before: RequestRecords, after: RequestRecords): void {
    const was = notableOf(before, this.#joinWindowMs);
    const now = notableOf(after, this.#joinWindowMs);
    if (was?.kind === now?.kind && was?.timeMs === now?.timeMs) {
      return;
    }
    const key = after.primary ?? after.shadow ?? before.primary ?? before.shadow;
    if (!key) {
      return;
    }
    if (now && this.#deferredNotable) {
      this.#deferredNotable.push([key.requestId, key.batchIndex, candidate, now.kind, now.timeMs]);
    } else if (now) {
      this.#putNotable.run(key.requestId, key.batchIndex, candidate, now.kind, now.timeMs);
    } else {
      this.#dropNotable.run(key.requestId, key.batchIndex, candidate);
    }
  }

  #persistTouched(): void {
    for (const candidate of this.#touchedCandidates) {
      const records = this.#candidateRecords.get(candidate);
      if (records === undefined) {
        this.#dropCandidate.run(candidate);
      } else {
        this.#putCandidate.run(candidate, records);
      }
    }
    this.#touchedCandidates.clear();
    for (const [scope, candidate, part] of this.#parts()) {
      if (!part.hasTouched) {
        continue;
      }
      for (const [level, start, bucket] of part.takeTouched()) {
        if (bucket) {
          this.#putBucket.run(scope, candidate, level, start, JSON.stringify(bucket));
        } else {
          this.#dropBucket.run(scope, candidate, level, start);
        }
      }
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

  /**
   * Stores records in one transaction; a record whose (request id, batch index, role, candidate) is known is
   * ignored, unless it is a MIRROR record and the known one the shadow's own (it then replaces it). A SHADOW record
   * of a candidate not stored yet is refused (not stored, counted in `refused`) while `maxCandidates` candidates
   * are stored; the rest of the batch is stored.
   */
  insertRecords(records: readonly StoredRecord[], maxCandidates = Number.POSITIVE_INFINITY): InsertResult {
    const result = this.#insertMany(records, maxCandidates);
    if (result.accepted > 0) {
      this.#changed();
    }
    return result;
  }

  /** Stores the label a user says is right (the latest wins); returns whether predictions for it are known. */
  upsertFeedback(requestId: string, batchIndex: number, label: string, timeMs: number): boolean {
    const known = this.#db.transaction(() => {
      const before = this.#loadState(requestId, batchIndex);
      this.#upsertFeedback.run(requestId, batchIndex, label, timeMs);
      if (!before.primary && before.shadows.size === 0) {
        return false;
      }
      this.#transition(before, withFeedback(before, label));
      this.#persistTouched();
      return true;
    })();
    this.#changed();
    return known;
  }

  /** Drops the 1 s buckets no report reads any more (as of `nowMs`), in every part. */
  #prune(nowMs: number): void {
    const dropped: [number, string, number, number][] = [];
    for (const [scope, candidate, part] of this.#parts()) {
      for (const [level, start] of part.prune(nowMs)) {
        dropped.push([scope, candidate, level, start]);
      }
    }
    if (dropped.length > 0 || this.#parts().some(([, , part]) => part.hasTouched)) {
      this.#db.transaction(() => {
        for (const row of dropped) {
          this.#dropBucket.run(...row);
        }
        this.#persistTouched();
      })();
    }
  }

  /**
   * The candidates with a SHADOW record in a window (by the primary's time when paired, else by its own), sorted
   * by name. The window's start must be normalised (`normalisedStartMs`).
   */
  candidates(options: Pick<ReportOptions, "nowMs" | "windowMs" | "startMs" | "joinWindowMs">): string[] {
    this.useJoinWindow(options.joinWindowMs);
    return [...this.#candidateParts]
      .filter(([, part]) => part.hasShadowRecords(options))
      .map(([name]) => name)
      .sort();
  }

  /**
   * The report for a window, from the aggregates: the cost of a few hundred buckets and of the disagreements shown,
   * whatever the number of pairs. The window's start must be normalised (`normalisedStartMs`). The candidate is
   * `options.candidate`, else the only one in the window (`resolveCandidate`: FAILED_PRECONDITION when several).
   */
  aggregateReport(options: ReportOptions) {
    this.useJoinWindow(options.joinWindowMs);
    this.#prune(options.nowMs);
    const candidate = resolveCandidate(
      options.candidate === undefined ? this.candidates(options) : [],
      options.candidate,
    );
    const resolved = candidate === undefined ? options : { ...options, candidate };
    const candidatePart = candidate === undefined ? undefined : this.#candidateParts.get(candidate);
    const tally = tallyAggregates(
      candidatePart ? [this.#primaryPart, candidatePart] : [this.#primaryPart],
      resolved,
    );
    const startMs = windowStartMs(options);
    const listed = (kind: 1 | 2): NotablePair[] =>
      candidate === undefined || options.maxDisagreements <= 0
        ? []
        : (
            this.#notableSince.all(candidate, kind, startMs, options.maxDisagreements) as [string, number][]
          ).flatMap(([requestId, batchIndex]) => {
            const state = this.#loadState(requestId, batchIndex);
            const { primary, shadow } = viewOf(state, candidate);
            return primary && shadow
              ? [
                  {
                    timeMs: primary.timeMs,
                    requestId,
                    batchIndex,
                    primaryLabel: primary.label,
                    shadowLabel: shadow.label,
                    feedbackLabel: state.feedbackLabel,
                  },
                ]
              : [];
          });
    return finishReport(
      { ...tally, disagreements: listed(1), conflicts: listed(2) },
      resolved,
      (requestId, batchIndex, name) => this.details(requestId, batchIndex, name),
    );
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

  /** The probabilities and inputs of a request's primary record and of one candidate's, by role. */
  details(
    requestId: string,
    batchIndex: number,
    candidate: string,
  ): Partial<Record<StoredRole, RecordDetail>> {
    return readDetails(this.#details, requestId, batchIndex, candidate);
  }

  /**
   * One small step of the retention (README: "At scale"): records older than `beforeMs` (by prediction time) and
   * feedback submitted before it, at most about `chunk` rows of each, with the aggregates kept equal to what
   * remains; then up to `vacuumPages` free pages are given back to the file system. Call it again, yielding between
   * calls, until `done`. Whole minutes before the cut leave the aggregates at once (their buckets are dropped); the
   * records of the cut's own minute, and pairs that straddle a dropped minute, leave them one request at a time.
   */
  retentionStep(beforeMs: number, chunk = 2000, vacuumPages = 256, notify = true): RetentionStep {
    const alignedMs = retentionCutMs(beforeMs);
    const step = this.#db.transaction(() => {
      const without = (requestId: string, batchIndex: number, role: number, candidate: string) => {
        const before = this.#loadState(requestId, batchIndex);
        const after = copyOf(before);
        if (role === Role.PRIMARY) {
          delete after.primary;
        } else {
          after.shadows.delete(candidate);
        }
        if (this.#deleteOne.run(requestId, batchIndex, role, candidate).changes > 0 && role === Role.SHADOW) {
          this.#countCandidate(candidate, -1);
        }
        this.#transition(before, after);
        // The coverage's times of the record's buckets, now without it.
        if (before.primary && !after.primary) {
          this.#primaryPart.primaryRemoved(before.primary.timeMs);
        }
        const shadow = before.shadows.get(candidate);
        if (role === Role.SHADOW && shadow && shadow.source !== SOURCE_MIRROR) {
          this.#candidatePart(candidate).shadowOwnStored(shadow.timeMs, -1);
        }
      };
      let records = 0;
      if (this.#primaryPart.floorMs < alignedMs) {
        // First step past a new minute: drop the buckets before it, and move the pairs that straddle it (one
        // record before, its partner after) to what they are without the old record.
        const straddling = this.#db
          .prepare(
            `SELECT DISTINCT o.request_id, o.batch_index, o.role, o.candidate FROM records o
             JOIN records y ON y.request_id = o.request_id AND y.batch_index = o.batch_index AND y.role != o.role
             WHERE o.time_ms >= ? AND o.time_ms < ? AND y.time_ms >= ?`,
          )
          .raw()
          .all(alignedMs - this.#joinWindowMs, alignedMs, alignedMs) as [string, number, number, string][];
        for (const [requestId, batchIndex, role, candidate] of straddling) {
          without(requestId, batchIndex, role, candidate);
          records++;
        }
        for (const [scope, candidate, part] of this.#parts()) {
          for (const [level, start] of part.cut(alignedMs)) {
            this.#dropBucket.run(scope, candidate, level, start);
          }
        }
        this.#setMeta("floor_ms", String(alignedMs));
      }
      // The cut's own minute: one request at a time.
      const partial = this.#db
        .prepare(
          "SELECT request_id, batch_index, role, candidate FROM records WHERE time_ms >= ? AND time_ms < ? LIMIT ?",
        )
        .raw()
        .all(alignedMs, beforeMs, chunk) as [string, number, number, string][];
      for (const [requestId, batchIndex, role, candidate] of partial) {
        without(requestId, batchIndex, role, candidate);
      }
      records += partial.length;
      const deleted = this.#db
        .prepare(
          "DELETE FROM records WHERE rowid IN (SELECT rowid FROM records WHERE time_ms < ? LIMIT ?) RETURNING role, candidate",
        )
        .raw()
        .all(alignedMs, chunk) as [number, string][];
      for (const [role, candidate] of deleted) {
        if (role === Role.SHADOW) {
          this.#countCandidate(candidate, -1);
        }
      }
      const bulk = deleted.length;
      records += bulk;
      this.#db
        .prepare(
          `DELETE FROM notable WHERE (request_id, batch_index, candidate) IN
             (SELECT request_id, batch_index, candidate FROM notable WHERE kind IN (1, 2) AND time_ms < ? LIMIT ?)`,
        )
        .run(alignedMs, chunk);
      // Feedback leaves the accuracy of the pairs it labelled that are still kept.
      const old = this.#db
        .prepare("SELECT request_id, batch_index FROM feedback WHERE time_ms < ? LIMIT ?")
        .raw()
        .all(beforeMs, chunk) as [string, number][];
      const drop = this.#db.prepare("DELETE FROM feedback WHERE request_id = ? AND batch_index = ?");
      for (const [requestId, batchIndex] of old) {
        const before = this.#loadState(requestId, batchIndex);
        drop.run(requestId, batchIndex);
        this.#transition(before, withFeedback(before, null));
      }
      this.#persistTouched();
      return {
        records,
        feedback: old.length,
        done: partial.length < chunk && bulk < chunk && old.length < chunk,
      };
    })();
    if (vacuumPages > 0) {
      this.#db.pragma(`incremental_vacuum(${vacuumPages})`);
    }
    if (notify && step.records + step.feedback > 0) {
      this.#changed();
    }
    return step;
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

  /**
   * The candidates stored (a SHADOW record of each is in the store, whatever its time), with how many records
   * each has: what the cap on candidates counts.
   */
  storedCandidates(): Map<string, number> {
    return new Map(this.#candidateRecords);
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

const okRow = (r: ReportRow) => r.grpcCode === 0 && r.label !== "";
