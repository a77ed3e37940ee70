import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";

/**
 * Steady, bounded load on app-service: an open-loop generator that starts one Predict call every 1000/rate ms
 * (Connect over HTTP/1.1 keep-alive, as a browser or CLI would), at most `maxInFlight` at once (a tick with no room
 * is counted as skipped, never queued), each call with its own timeout. Every call is one Sample.
 */

export interface Sample {
  /** ms since the epoch when the call was started / ended */
  sentAt: number;
  endedAt: number;
  ok: boolean;
  /** the error's code name when it failed ("unavailable", "deadline_exceeded", … or "transport") */
  code: string | undefined;
  /** the join key app-service gave the prediction (acknowledged calls only) */
  requestId: string | undefined;
}

export interface LoadOptions {
  baseUrl: string;
  /** calls started per second */
  rate: number;
  maxInFlight?: number;
  /** timeout of each call (ms); default 5000 */
  timeoutMs?: number;
  /** hard limit on the run (ms) even if nobody calls stop; default 120 000 */
  maxDurationMs?: number;
}

export interface Load {
  readonly samples: readonly Sample[];
  readonly skipped: number;
  /** Stops starting calls and waits for those in flight. */
  stop(): Promise<Sample[]>;
}

const TEXTS = [
  "Congratulations! You have won a FREE cruise. Call now to claim your prize!!!",
  "Hi Sam, are we still on for lunch tomorrow at noon?",
  "URGENT: your account has been suspended, verify your password now",
  "The meeting has moved to room 4B, see you at 3pm",
  "Cheap meds online, no prescription needed, 80% off",
  "Can you review my pull request when you have a minute? Thanks",
  "Make $5000 a week working from home, click here",
  "Attached are the minutes from yesterday's planning meeting",
];

export function startLoad(options: LoadOptions): Load {
  const client = createClient(
    PredictService,
    createConnectTransport({ baseUrl: options.baseUrl, httpVersion: "1.1" }),
  );
  const samples: Sample[] = [];
  const pending = new Set<Promise<void>>();
  const maxInFlight = options.maxInFlight ?? 32;
  const timeoutMs = options.timeoutMs ?? 5000;
  let skipped = 0;
  let n = 0;
  const fire = () => {
    if (pending.size >= maxInFlight) {
      skipped++;
      return;
    }
    const text = `${TEXTS[n % TEXTS.length]} #${n}`;
    n++;
    const sentAt = Date.now();
    const call = client.predict({ text }, { timeoutMs }).then(
      (response) => {
        samples.push({
          sentAt,
          endedAt: Date.now(),
          ok: true,
          code: undefined,
          requestId: response.prediction?.requestId,
        });
      },
      (error: unknown) => {
        const connectError = ConnectError.from(error);
        samples.push({
          sentAt,
          endedAt: Date.now(),
          ok: false,
          code: connectError.code === Code.Unknown ? "transport" : Code[connectError.code],
          requestId: undefined,
        });
      },
    );
    const tracked = call.finally(() => pending.delete(tracked));
    pending.add(tracked);
  };
  const interval = setInterval(fire, 1000 / options.rate);
  const limit = setTimeout(() => clearInterval(interval), options.maxDurationMs ?? 120_000);
  return {
    samples,
    get skipped() {
      return skipped;
    },
    stop: async () => {
      clearInterval(interval);
      clearTimeout(limit);
      await Promise.all([...pending]);
      return samples;
    },
  };
}

/** The q-quantile (0..1) of `values` (nearest rank); NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) {
    return Number.NaN;
  }
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/** Latencies (ms) of the acknowledged calls among `samples`. */
export function okLatencies(samples: readonly Sample[]): number[] {
  return samples.filter((sample) => sample.ok).map((sample) => sample.endedAt - sample.sentAt);
}
