import type { Logger } from "@shadowmesh/common";
import type { ShadowStore } from "./store.js";

export interface RetentionOptions {
  store: ShadowStore;
  /** Rows older than this are deleted. */
  retentionMs: number;
  /** How often the sweep runs (it also runs once soon after start, never before the ports open). */
  intervalMs: number;
  logger: Logger;
  onDeleted?: (deleted: { records: number; feedback: number }) => void;
  now?: () => number;
  /** Rows per step (default 2000): each step is one short transaction, then the event loop runs. */
  chunk?: number;
}

export interface Retention {
  /** Runs one whole sweep now, in yielding steps; resolves with what it deleted. */
  sweep(): Promise<{ records: number; feedback: number }>;
  stop(): void;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Deletes records (by prediction time) and feedback (by submission time) older than the retention, periodically,
 * in small steps that yield to the event loop between them (ingest, feedback and reports go on during a sweep of
 * millions of rows), each step also returning freed pages to the file system (incremental vacuum). The first sweep
 * starts on the next turn of the event loop, so start-up never waits for it.
 */
export function startRetention(options: RetentionOptions): Retention {
  const now = options.now ?? Date.now;
  let running: Promise<{ records: number; feedback: number }> | undefined;
  let stopped = false;
  const sweep = () => {
    running ??= (async () => {
      const beforeMs = now() - options.retentionMs;
      const deleted = { records: 0, feedback: 0 };
      for (;;) {
        const step = options.store.retentionStep(beforeMs, options.chunk ?? 2000);
        deleted.records += step.records;
        deleted.feedback += step.feedback;
        if (step.done || stopped) {
          break;
        }
        await yieldToEventLoop();
      }
      if (deleted.records + deleted.feedback > 0) {
        options.logger.info(deleted, "retention: deleted old rows");
      }
      options.onDeleted?.(deleted);
      return deleted;
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
  const run = () => {
    sweep().catch((error: unknown) => {
      options.logger.error({ err: error }, "retention sweep failed");
    });
  };
  const first = setImmediate(run);
  const timer = setInterval(run, options.intervalMs);
  timer.unref();
  return {
    sweep,
    stop: () => {
      stopped = true;
      clearImmediate(first);
      clearInterval(timer);
    },
  };
}
