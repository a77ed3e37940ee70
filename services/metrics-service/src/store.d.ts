import { type ReportOptions } from "./report.js";
/**
 * The store is the source of truth: every prediction record and every piece of feedback, in one SQLite file (WAL).
 * metrics-service is its single writer. The report's numbers are kept as aggregates in time buckets (aggregates.ts),
 * updated in the same transaction as the records they count and persisted with them, so a report costs the same at
 * 1 M pairs as at 1 k, and a restart loses nothing that was acknowledged.
 */
/** Role numbers as in the proto (ROLE_PRIMARY = 1, ROLE_SHADOW = 2). */
export type RoleNumber = 1 | 2;
/** Record sources as in the proto: RECORD_SOURCE_UNSPECIFIED = 0, _MODEL_SERVICE = 1, _MIRROR = 2. */
export type SourceNumber = 0 | 1 | 2;
/** RECORD_SOURCE_MIRROR: a failure the mirroring caller saw; it outweighs the shadow's own record. */
export declare const SOURCE_MIRROR = 2;
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
    /** The join window the aggregates are kept for (default 60 s); reports with another one rebuild them. */
    joinWindowMs?: number;
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
export declare const DATABASE_FILE = "shadow.db";
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
export declare class ShadowReader implements ReportSource {
    #private;
    constructor(file: string);
    snapshot<T>(read: () => T): T;
    reportRows(fromMs: number): ReportRow[];
    details(requestId: string, batchIndex: number): Partial<Record<RoleNumber, RecordDetail>>;
    close(): void;
}
/** What one retention step did; `done` when nothing older than the cut is left. */
export interface RetentionStep {
    records: number;
    feedback: number;
    done: boolean;
}
/** The minute a retention cut falls in: buckets before it are dropped whole. */
export declare const retentionCutMs: (beforeMs: number) => number;
export declare class ShadowStore implements ReportSource {
    #private;
    readonly file: string;
    constructor(options: StoreOptions);
    /** The aggregates' join window; a different one recounts them from the records (once). */
    useJoinWindow(joinWindowMs: number): void;
    /** Increases with every write that changed something; watchers compare it. */
    get version(): number;
    /** Calls `listener` after every write that changed something; returns the unsubscribe function. */
    onChange(listener: () => void): () => void;
    /** Stores records in one transaction; a record whose (request id, batch index, role) is known is ignored. */
    insertRecords(records: readonly StoredRecord[]): InsertResult;
    /** Stores the label a user says is right (the latest wins); returns whether predictions for it are known. */
    upsertFeedback(requestId: string, batchIndex: number, label: string, timeMs: number): boolean;
    /**
     * The report for a window, from the aggregates: the cost of a few hundred buckets and of the disagreements shown,
     * whatever the number of pairs. The window's start must be normalised (`normalisedStartMs`).
     */
    aggregateReport(options: ReportOptions): import("@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js").ShadowReport;
    /**
     * The lean rows of every record whose prediction time is at or after `fromMs`, with its request's feedback
     * label. There is no upper bound: a record stamped slightly in the future by a skewed clock still belongs to the
     * window that ends now.
     */
    reportRows(fromMs: number): ReportRow[];
    snapshot<T>(read: () => T): T;
    /** The probabilities and inputs of a request's records, by role. */
    details(requestId: string, batchIndex: number): Partial<Record<RoleNumber, RecordDetail>>;
    /**
     * Every full record whose prediction time is at or after `fromMs`, with its request's feedback label. There is no upper
     * bound: a record stamped slightly in the future by a skewed clock still belongs to the window that ends now.
     */
    recordsSince(fromMs: number): RecordWithFeedback[];
    /**
     * One small step of the retention (README: "At scale"): records older than `beforeMs` (by prediction time) and
     * feedback submitted before it, at most about `chunk` rows of each, with the aggregates kept equal to what
     * remains; then up to `vacuumPages` free pages are given back to the file system. Call it again, yielding between
     * calls, until `done`. Whole minutes before the cut leave the aggregates at once (their buckets are dropped); the
     * records of the cut's own minute, and pairs that straddle a dropped minute, leave them one request at a time.
     */
    retentionStep(beforeMs: number, chunk?: number, vacuumPages?: number, notify?: boolean): RetentionStep;
    /** Deletes records older than `beforeMs` (aligned down to a minute) and feedback submitted before it, at once. */
    deleteOlderThan(beforeMs: number, chunk?: number): {
        records: number;
        feedback: number;
    };
    /** The labels in the probabilities of a request's records (any batch index, either role); empty when unknown. */
    requestLabels(requestId: string): Set<string>;
    /**
     * The labels of each model (name and version) among the newest `limit` successful records, with the time of its
     * newest record: the models seen recently, for checking feedback about a request not reported yet.
     */
    recentModelLabels(limit?: number): {
        model: string;
        labels: Set<string>;
        lastMs: number;
    }[];
    /** Row counts, for logs and tests. */
    counts(): {
        records: number;
        feedback: number;
    };
    /** The file's size in pages and its free pages, for tests and the benchmark. */
    pages(): {
        total: number;
        free: number;
    };
    /** Checkpoints the WAL into the main file and closes the database. */
    close(): void;
}
