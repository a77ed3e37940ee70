import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ShadowReport } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import type { Accessor } from "solid-js";
import { useClients } from "../clients";
import { createLive, type Live, sleep } from "./live";

export interface ShadowReportOptions {
  /** The window's length in seconds. */
  windowSeconds: Accessor<number>;
  /** The candidate's model name ("" = the only candidate). */
  candidate: Accessor<string>;
  /** The most recent disagreements to ask for. */
  maxDisagreements?: number;
  retryDelayMs?: (attempt: number) => number;
}

/**
 * One candidate's report, live: a WatchShadowReport stream (the service pushes a new report whenever the data
 * changes), reopened with backoff when it fails or ends, restarted when the window or the candidate changes and
 * aborted when the component goes away. NOT_FOUND means the service knows no such candidate; a report about another
 * candidate than the one asked for is refused (the stream is treated as broken), never shown.
 */
export function useShadowReport(options: ShadowReportOptions): Live<ShadowReport> {
  const { metrics } = useClients();
  return createLive({
    key: () => ({ seconds: options.windowSeconds(), candidate: options.candidate() }),
    candidate: (key) => key.candidate,
    retryDelayMs: options.retryDelayMs,
    open: async function* (key, signal) {
      const stream = metrics.watchShadowReport(
        {
          window: create(DurationSchema, { seconds: BigInt(key.seconds) }),
          maxDisagreements: options.maxDisagreements ?? 10,
          candidate: key.candidate,
        },
        { signal },
      );
      for await (const update of stream) {
        const report = update.report;
        if (!report) {
          continue;
        }
        if (key.candidate && report.candidate && report.candidate !== key.candidate) {
          // Never show one candidate's numbers under another's name: treat it as a broken stream.
          throw new ConnectError(
            `asked for candidate ${key.candidate}, the service answered about ${report.candidate}`,
            Code.Internal,
          );
        }
        yield report;
      }
    },
  });
}

export interface CandidatesOptions {
  windowSeconds: Accessor<number>;
  /** The pause between two ListCandidates calls while they succeed (2 s). */
  pollMs?: number;
  /** The deadline of one ListCandidates call (10 s): a call that hangs fails and is retried instead of freezing. */
  callTimeoutMs?: number;
  retryDelayMs?: (attempt: number) => number;
}

/**
 * Every candidate's report summary, live: ListCandidates polled every `pollMs` (there is no stream of the list),
 * with the same backoff as the report stream when a call fails or passes its deadline, restarted when the window
 * changes.
 */
export function useCandidates(options: CandidatesOptions): Live<ShadowReport[]> {
  const { metrics } = useClients();
  const pollMs = options.pollMs ?? 2000;
  return createLive({
    key: () => options.windowSeconds(),
    retryDelayMs: options.retryDelayMs,
    open: async function* (seconds, signal) {
      while (!signal.aborted) {
        const response = await metrics.listCandidates(
          { window: create(DurationSchema, { seconds: BigInt(seconds) }) },
          { signal, timeoutMs: options.callTimeoutMs ?? 10_000 },
        );
        yield response.candidates;
        await sleep(pollMs, signal);
      }
    },
  });
}
