import { existsSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { fromBinary } from "@bufbuild/protobuf";
import {
  type ShadowReport,
  ShadowReportSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { buildReport, queryStartMs, type ReportOptions } from "./report.js";
import type { ReportSource } from "./store.js";

/** Computes a report from one consistent snapshot of a store. */
export function computeReport(source: ReportSource, options: ReportOptions): ShadowReport {
  return source.snapshot(() =>
    buildReport(source.reportRows(queryStartMs(options)), options, (requestId, batchIndex) =>
      source.details(requestId, batchIndex),
    ),
  );
}

/** Where reports are computed. */
export interface ReportEngine {
  compute(options: ReportOptions): Promise<ShadowReport>;
  close(): Promise<void>;
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
