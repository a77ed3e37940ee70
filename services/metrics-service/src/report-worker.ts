import { parentPort, workerData } from "node:worker_threads";
import { toBinary } from "@bufbuild/protobuf";
import { ShadowReportSchema } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import type { ReportOptions } from "./report.js";
import { computeReport } from "./report-engine.js";
import { ShadowReader } from "./store.js";

/** The report worker (see createWorkerEngine): reads the store read-only and answers with serialized reports. */

const { file } = workerData as { file: string };
const reader = new ShadowReader(file);
const port = parentPort;
if (!port) {
  throw new Error("report-worker must run as a worker thread");
}

port.on("message", ({ id, options }: { id: number; options: ReportOptions }) => {
  try {
    port.postMessage({ id, bytes: toBinary(ShadowReportSchema, computeReport(reader, options)) });
  } catch (error) {
    port.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
