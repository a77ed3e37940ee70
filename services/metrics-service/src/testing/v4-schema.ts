import type Database from "better-sqlite3";

/**
 * Creates the tables of a schema-4 store (one shadow per request; the score delta on both records; aggregates and
 * notable lists keyed without a candidate), frozen as that version of metrics-service made them, with the join
 * window it recorded. For the migration test and the migration benchmark; the caller fills the tables and sets
 * `user_version = 4`.
 */
export function createV4Schema(db: Database.Database): void {
  db.exec(`CREATE TABLE records (
    request_id TEXT NOT NULL, batch_index INTEGER NOT NULL, role INTEGER NOT NULL CHECK (role IN (1, 2)),
    model_name TEXT NOT NULL, model_version TEXT NOT NULL, label TEXT NOT NULL, probabilities TEXT NOT NULL,
    latency_ms REAL NOT NULL, grpc_code INTEGER NOT NULL, time_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL,
    input_sha256 TEXT NOT NULL, input_length INTEGER NOT NULL, input_text TEXT, instance TEXT NOT NULL,
    score_delta REAL, source INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, batch_index, role))`);
  db.exec("CREATE INDEX records_by_time ON records (time_ms)");
  db.exec(`CREATE TABLE feedback (request_id TEXT NOT NULL, batch_index INTEGER NOT NULL, label TEXT NOT NULL,
    time_ms INTEGER NOT NULL, PRIMARY KEY (request_id, batch_index))`);
  db.exec("CREATE INDEX feedback_by_time ON feedback (time_ms)");
  db.exec(`CREATE TABLE aggregates (level INTEGER NOT NULL, start_ms INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (level, start_ms)) WITHOUT ROWID`);
  db.exec(`CREATE TABLE notable (request_id TEXT NOT NULL, batch_index INTEGER NOT NULL, kind INTEGER NOT NULL,
    time_ms INTEGER NOT NULL, PRIMARY KEY (request_id, batch_index)) WITHOUT ROWID`);
  db.exec("CREATE INDEX notable_by_time ON notable (kind, time_ms)");
  db.exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID");
  db.exec("INSERT INTO meta VALUES ('join_window_ms', '60000')");
}
