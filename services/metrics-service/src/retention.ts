import type { Logger } from "@shadowmesh/common";
import type { ShadowStore } from "./store.js";

export interface RetentionOptions {
  store: ShadowStore;
  /** Rows older than this are deleted. */
  retentionMs: number;
  /** How often the sweep runs (it also runs once at start). */
  intervalMs: number;
  logger: Logger;
  onDeleted?: (deleted: { records: number; feedback: number }) => void;
  now?: () => number;
}

export interface Retention {
  /** Runs one sweep now; returns what it deleted. */
  sweep(): { records: number; feedback: number };
  stop(): void;
}

/** Deletes records (by prediction time) and feedback (by submission time) older than the retention, periodically. */
export function startRetention(options: RetentionOptions): Retention {
  const now = options.now ?? Date.now;
  const sweep = () => {
    const deleted = options.store.deleteOlderThan(now() - options.retentionMs);
    if (deleted.records + deleted.feedback > 0) {
      options.logger.info(deleted, "retention: deleted old rows");
    }
    options.onDeleted?.(deleted);
    return deleted;
  };
  const run = () => {
    try {
      sweep();
    } catch (error) {
      options.logger.error({ err: error }, "retention sweep failed");
    }
  };
  run();
  const timer = setInterval(run, options.intervalMs);
  timer.unref();
  return { sweep, stop: () => clearInterval(timer) };
}
