import { parseArgs } from "node:util";
import { type DescService, toJsonString } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcJsTransport } from "@shadowmesh/common";
import {
  MetricsService,
  type ShadowReport,
  ShadowReportSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { formatCandidates, formatReport, parseDuration } from "./format-report.js";

/**
 * `npm run shadow:report`: asks the running metrics-service for the shadow report and prints it as tables
 * (`--json` for machines). Exit codes: 0 printed, 1 metrics-service unreachable or failed, 2 bad arguments, 3 the
 * window holds several candidates and none was named (their list is printed, with the hint to pass --candidate).
 */

const USAGE = `Usage: npm run shadow:report -- [options]

Prints the shadow comparison report of the running metrics-service.

Options:
  --address HOST:PORT    metrics-service gRPC address (env SHADOW_REPORT_ADDRESS; default 127.0.0.1:50053)
  --window DURATION      the window that ends now, e.g. 90s, 15m, 1h (default: the service's, 1h)
  --candidate NAME       the candidate (the shadow model's name) to report on; without it: the only one
  --list                 list every candidate in the window with its verdict, side by side
  --disagreements N      how many recent disagreements to list (default: the service's, 20)
  --json                 print the report as JSON (proto3 JSON mapping) instead of tables
  --timeout-ms N         give up after this many ms (default 5000)
  --help                 print this help`;

function usageError(message: string): never {
  console.error(`shadow:report: ${message}\n\n${USAGE}`);
  process.exit(2);
}

async function main() {
  let values: ReturnType<typeof parse>["values"];
  function parse() {
    return parseArgs({
      options: {
        address: { type: "string" },
        window: { type: "string" },
        disagreements: { type: "string" },
        candidate: { type: "string" },
        list: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        "timeout-ms": { type: "string" },
        help: { type: "boolean", default: false },
      },
      allowPositionals: false,
    });
  }
  try {
    values = parse().values;
  } catch (error) {
    usageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const address = values.address ?? process.env.SHADOW_REPORT_ADDRESS ?? "127.0.0.1:50053";
  const windowMs = values.window === undefined ? undefined : parseDuration(values.window);
  if (values.window !== undefined && windowMs === undefined) {
    usageError(`--window: expected a duration like 90s, 15m or 1h, got "${values.window}"`);
  }
  const disagreements = values.disagreements === undefined ? 0 : Number(values.disagreements);
  if (!Number.isInteger(disagreements) || disagreements < 0) {
    usageError(`--disagreements: expected a whole number, got "${values.disagreements}"`);
  }
  const timeoutMs = values["timeout-ms"] === undefined ? 5000 : Number(values["timeout-ms"]);
  if (!(timeoutMs > 0)) {
    usageError(`--timeout-ms: expected a positive number, got "${values["timeout-ms"]}"`);
  }

  if (values.list && values.candidate !== undefined) {
    usageError("--list and --candidate: pick one");
  }

  const client = metricsClientAt(MetricsService, address);
  const window =
    windowMs === undefined
      ? {}
      : {
          window: {
            seconds: BigInt(Math.floor(windowMs / 1000)),
            nanos: Math.round((windowMs % 1000) * 1e6),
          },
        };
  /** Prints every candidate of the window, side by side. */
  const list = async (): Promise<void> => {
    const { candidates } = await client.listCandidates(window, { timeoutMs });
    console.log(
      values.json
        ? JSON.stringify(
            candidates.map((c) => JSON.parse(toJsonString(ShadowReportSchema, c))),
            undefined,
            2,
          )
        : formatCandidates(candidates),
    );
  };
  try {
    if (values.list) {
      await list();
      return;
    }
    let report: ShadowReport | undefined;
    try {
      report = (
        await client.getShadowReport(
          { ...window, maxDisagreements: disagreements, candidate: values.candidate ?? "" },
          { timeoutMs },
        )
      ).report;
    } catch (error) {
      if (values.candidate === undefined && ConnectError.from(error).code === Code.FailedPrecondition) {
        // Several candidates: show them side by side and say how to pick one.
        await list();
        console.error(
          "shadow:report: the window holds several candidates; pass --candidate NAME for one's report",
        );
        process.exitCode = 3;
        return;
      }
      throw error;
    }
    if (!report) {
      throw new ConnectError("metrics-service answered without a report", Code.Internal);
    }
    console.log(
      values.json ? toJsonString(ShadowReportSchema, report, { prettySpaces: 2 }) : formatReport(report),
    );
  } catch (error) {
    const e = ConnectError.from(error);
    const hint =
      e.code === Code.Unavailable || e.code === Code.DeadlineExceeded
        ? ` (is it running? \`npm start\`, or pass --address)`
        : "";
    console.error(`shadow:report: metrics-service at ${address}: ${Code[e.code]}: ${e.rawMessage}${hint}`);
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

await main();

/** connect's client over one grpc-js channel (createGrpcJsTransport), with `close()` for the channel. */
function metricsClientAt<S extends DescService>(service: S, address: string): Client<S> & { close(): void } {
  const transport = createGrpcJsTransport({ address });
  return Object.assign(createClient(service, transport), { close: () => transport.close() });
}
