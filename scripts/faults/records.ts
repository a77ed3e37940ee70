import path from "node:path";
import Database from "better-sqlite3";

/**
 * What metrics-service stored, read straight from its SQLite file after the mesh has stopped (read-only): the one
 * place that can say whether an acknowledged prediction's record was lost. Role 1 = PRIMARY, 2 = SHADOW; source
 * 2 = MIRROR (app-service's record of a failed mirrored call), otherwise the model-service's own.
 */
export interface StoredRecord {
  requestId: string;
  role: number;
  grpcCode: number;
  source: number;
  timeMs: number;
}

export function readRecords(dataDir: string): StoredRecord[] {
  const db = new Database(path.join(dataDir, "shadow.db"), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare(
        "SELECT request_id AS requestId, role, grpc_code AS grpcCode, source, time_ms AS timeMs FROM records",
      )
      .all() as StoredRecord[];
  } finally {
    db.close();
  }
}

export const PRIMARY = 1;
export const SHADOW = 2;
export const MIRROR = 2;
