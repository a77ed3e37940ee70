import { existsSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type ShadowReport,
  ShadowReportSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { buildReport, queryStartMs, type ReportOptions } from "./report.js";
import type { ReportSource, ShadowStore } from "./store.js";

/** Computes a report from one consistent snapshot of a store. */
export function computeReport(source: ReportSource, options: ReportOptions): ShadowReport {
  return source.snapshot(() =>
    buildReport(source.reportRows(queryStartMs(options)), options, (requestId, batchIndex, candidate) =>
      source.details(requestId, batchIndex, candidate),
    ),
  );
}

/** How a report is asked for. */
export interface ComputeOptions {
  /** Aborted when nobody waits for the report any more: queued work is then dropped. */
  signal?: AbortSignal;
  /** Computed at once, ahead of the queue (the Prometheus gauges: a scrape never waits behind reports). */
  priority?: boolean;
}

/** Where reports are computed. */
export interface ReportEngine {
  compute(options: ReportOptions, how?: ComputeOptions): Promise<ShadowReport>;
  close(): Promise<void>;
}

/** Reports queued at most in the aggregate engine; more are refused (RESOURCE_EXHAUSTED) until it drains. */
export const MAX_QUEUED_REPORTS = 128;

/**
 * Computes reports from the store's aggregates (`ShadowStore.aggregateReport`), on the store's thread: a report
 * costs about a millisecond per hundred buckets whatever the number of pairs, so it needs no worker. Requests wait
 * in a bounded queue and run one per event-loop turn, so a storm of reports interleaves with ingest instead of
 * starving it; a request whose caller has gone (its signal aborted) leaves the queue at once; a full queue refuses
 * with RESOURCE_EXHAUSTED. `priority` requests (the gauges) are computed at once.
 */
export function createAggregateEngine(store: ShadowStore, maxQueued = MAX_QUEUED_REPORTS): ReportEngine {
  interface Job {
    options: ReportOptions;
    resolve: (report: ShadowReport) => void;
    reject: (error: unknown) => void;
    done: () => void;
  }
  const queue: Job[] = [];
  let scheduled = false;
  let closed = false;
  const run = () => {
    scheduled = false;
    const job = queue.shift();
    if (job) {
      job.done();
      try {
        job.resolve(store.aggregateReport(job.options));
      } catch (error) {
        job.reject(error);
      }
    }
    if (queue.length > 0) {
      schedule();
    }
  };
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      setImmediate(run);
    }
  };
  return {
    compute(options, how = {}) {
      if (closed) {
        return Promise.reject(new ConnectError("the report engine is closed", Code.Unavailable));
      }
      if (how.priority) {
        try {
          return Promise.resolve(store.aggregateReport(options));
        } catch (error) {
          return Promise.reject(error);
        }
      }
      const { signal } = how;
      if (signal?.aborted) {
        return Promise.reject(new ConnectError("the caller has gone", Code.Canceled));
      }
      if (queue.length >= maxQueued) {
        return Promise.reject(
          new ConnectError(
            `${maxQueued} reports are being computed already; retry shortly`,
            Code.ResourceExhausted,
          ),
        );
      }
      return new Promise<ShadowReport>((resolve, reject) => {
        const gone = () => {
          const at = queue.indexOf(job);
          if (at >= 0) {
            queue.splice(at, 1);
            reject(new ConnectError("the caller has gone", Code.Canceled));
          }
        };
        const job: Job = {
          options,
          resolve,
          reject,
          done: () => signal?.removeEventListener("abort", gone),
        };
        signal?.addEventListener("abort", gone, { once: true });
        queue.push(job);
        schedule();
      });
    },
    async close() {
      closed = true;
      for (const job of queue.splice(0)) {
        job.done();
        job.reject(new ConnectError("the report engine is closed", Code.Unavailable));
      }
    },
  };
}

/** Computes reports on the calling thread (tests of the service class, tools). */
export function createInlineEngine(source: ReportSource): ReportEngine {
  return {
    compute: async (options) => computeReport(source, options),
    close: async () => {},
  };
}

/**
 * The worker's script: the compiled one beside this module. Under tsx or vitest this module is the TypeScript
 * source, and worker threads cannot load TypeScript, so the build output is used (`npm test` builds first).
 */
function workerEntry(): URL {
  const here = new URL(import.meta.url);
  const entry = here.pathname.endsWith(".ts")
    ? new URL("../dist/report-worker.js", here)
    : new URL("./report-worker.js", here);
  if (!existsSync(entry)) {
    throw new Error(`${entry.pathname} does not exist: run \`npx tsc -b tsconfig.json\` first`);
  }
  return entry;
}

interface WorkerReply {
  id: number;
  bytes?: Uint8Array;
  error?: string;
}

/**
 * Computes reports on a worker thread with its own read-only connection to the store (WAL: readers never block the
 * writer). A report over a large window takes a while; on the main thread it would hold up ingest and feedback,
 * which must answer quickly (model-services drop records when the collector is slow). Requests are answered in
 * order; a worker that dies is replaced on the next request, and the requests it held fail.
 */
export function createWorkerEngine(file: string): ReportEngine {
  const pending = new Map<number, { resolve: (r: ShadowReport) => void; reject: (e: Error) => void }>();
  let worker: Worker | undefined;
  let nextId = 0;
  let closed = false;

  const failAll = (error: Error) => {
    for (const { reject } of pending.values()) {
      reject(error);
    }
    pending.clear();
  };

  const spawn = (): Worker => {
    const created = new Worker(workerEntry(), { workerData: { file } });
    created.unref();
    created.on("message", (reply: WorkerReply) => {
      const waiting = pending.get(reply.id);
      if (!waiting) {
        return;
      }
      pending.delete(reply.id);
      if (reply.bytes) {
        waiting.resolve(fromBinary(ShadowReportSchema, reply.bytes));
      } else {
        waiting.reject(new Error(`report worker: ${reply.error ?? "no report"}`));
      }
    });
    const gone = (error: Error) => {
      if (worker === created) {
        worker = undefined;
      }
      failAll(error);
    };
    created.on("error", (error) => gone(error));
    created.on("exit", (code) => gone(new Error(`report worker exited with code ${code}`)));
    return created;
  };

  return {
    compute(options) {
      if (closed) {
        return Promise.reject(new Error("the report engine is closed"));
      }
      worker ??= spawn();
      const id = nextId++;
      const target = worker;
      return new Promise<ShadowReport>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        target.postMessage({ id, options });
      });
    },
    async close() {
      closed = true;
      const current = worker;
      worker = undefined;
      failAll(new Error("the report engine is closed"));
      await current?.terminate();
    },
  };
}
