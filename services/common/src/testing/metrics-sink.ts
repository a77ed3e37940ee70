import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  MetricsService,
  type PredictionRecord,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { vi } from "vitest";
import { bindGrpcServer, createGrpcServer, stopGrpcServer } from "../grpc-server.js";
import { registerRoutes } from "../grpc-transport.js";

/** Waits until the handler's deadline passes (or the caller goes away): a collector that never answers. */
function hang(context: HandlerContext): Promise<never> {
  return new Promise((_, reject) => {
    const fail = () => reject(new ConnectError("aborted", Code.Canceled));
    if (context.signal.aborted) fail();
    else context.signal.addEventListener("abort", fail, { once: true });
  });
}

export interface MetricsSinkOptions {
  /**
   * Store each (request id, batch index, role) once, as metrics-service does (default true); false keeps every
   * record received, duplicates included.
   */
  dedupe?: boolean;
}

/** What a test can change while the sink runs. */
export interface MetricsSinkState {
  /** Every call fails (INTERNAL). */
  failing: boolean;
  /** Every call is refused with INVALID_ARGUMENT. */
  refuse: boolean;
  /** The next n calls hang until their deadline … */
  hangCalls: number;
  /** … after storing their batch (a slow collector that stored it all the same). */
  storeBeforeHang: boolean;
  /** Calls received. */
  calls: number;
  /** Records received again (with dedupe). */
  duplicates: number;
}

export type MetricsSink = Awaited<ReturnType<typeof startMetricsSink>>;

/**
 * An in-process implementation of MetricsService.ReportPredictions (the contract metrics-service implements) on a
 * real grpc-js server on 127.0.0.1 and a free port: it keeps what it receives; `state` makes it fail, refuse or hang.
 * The one sink every reporter test uses (common's reporter, model-service, app-service's mirror records).
 */
export async function startMetricsSink(options: MetricsSinkOptions = {}) {
  const dedupe = options.dedupe ?? true;
  const records: PredictionRecord[] = [];
  const keys = new Set<string>();
  const state: MetricsSinkState = {
    failing: false,
    refuse: false,
    hangCalls: 0,
    storeBeforeHang: false,
    calls: 0,
    duplicates: 0,
  };
  const store = (batch: readonly PredictionRecord[]) => {
    let duplicates = 0;
    for (const record of batch) {
      const key = `${record.requestId}/${record.batchIndex}/${record.role}`;
      if (dedupe && keys.has(key)) {
        duplicates++;
        continue;
      }
      keys.add(key);
      records.push(record);
    }
    state.duplicates += duplicates;
    return duplicates;
  };
  const impl: Partial<ServiceImpl<typeof MetricsService>> = {
    async reportPredictions(request, context) {
      state.calls++;
      if (state.refuse) {
        throw new ConnectError("refused on purpose", Code.InvalidArgument);
      }
      if (state.failing) {
        throw new Error("sink is failing on purpose");
      }
      if (state.hangCalls > 0) {
        state.hangCalls--;
        if (state.storeBeforeHang) {
          store(request.records);
        }
        return hang(context);
      }
      const duplicates = store(request.records);
      return { acceptedCount: request.records.length - duplicates, duplicateCount: duplicates };
    },
  };
  const server = createGrpcServer();
  registerRoutes(server, (router) => router.service(MetricsService, impl));
  const port = await bindGrpcServer(server, "127.0.0.1", 0);
  return {
    records,
    state,
    address: `127.0.0.1:${port}`,
    /** Waits until `predicate` holds for the records, for at most `timeoutMs`. */
    async waitFor(predicate: (records: PredictionRecord[]) => boolean, timeoutMs = 20_000): Promise<void> {
      await vi.waitFor(
        () => {
          if (!predicate(records)) {
            throw new Error(`the metrics sink did not get the expected records (it has ${records.length})`);
          }
        },
        { timeout: timeoutMs, interval: 20 },
      );
    },
    close: () => stopGrpcServer(server, 1000),
  };
}
