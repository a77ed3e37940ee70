import { Code, ConnectError } from "@connectrpc/connect";
import { type Accessor, createEffect, createSignal, onCleanup } from "solid-js";
import { isComparisonMissing } from "../lib/errors";

/** Where a live view stands. Only "live" and "reconnecting" keep showing data; the other failures clear it. */
export type LiveStatus =
  | { kind: "connecting" }
  | { kind: "live"; updated: Date }
  | { kind: "reconnecting"; problem: string; attempt: number }
  | { kind: "missing"; why: string }
  | { kind: "unknown-candidate"; candidate: string };

/** The pause before the n-th reconnect in a row (0-based): 1 s doubling to 30 s. */
export function defaultRetryDelayMs(attempt: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));
}

export interface LiveOptions<K, T> {
  /** What the source depends on (window, candidate): a change closes the source, clears the value and opens anew. */
  key: Accessor<K>;
  /** Opens the source: every item it yields becomes the value. It ends or throws → reopened after a pause. */
  open: (key: K, signal: AbortSignal) => AsyncIterable<T>;
  /** Pause before reopening after the n-th failure in a row; tests shorten it. */
  retryDelayMs?: (attempt: number) => number;
  /** The candidate the source is about, if any: NOT_FOUND then means "no such candidate", not "no service". */
  candidate?: (key: K) => string | undefined;
}

export interface Live<T> {
  value: Accessor<T | undefined>;
  status: Accessor<LiveStatus>;
}

/**
 * One live source with reconnects: opens `open(key)`, publishes every item it yields, and when it fails or ends
 * reopens it after `retryDelayMs(attempt)` (the attempt count starts again at 0 after each item). It is closed (its
 * signal aborted) when the key changes and when the owner (the component) is disposed. Call it inside a component.
 */
export function createLive<K, T>(options: LiveOptions<K, T>): Live<T> {
  const [value, setValue] = createSignal<T>();
  const [status, setStatus] = createSignal<LiveStatus>({ kind: "connecting" });
  const retryDelay = options.retryDelayMs ?? defaultRetryDelayMs;

  createEffect(() => {
    const key = options.key();
    const abort = new AbortController();
    onCleanup(() => abort.abort());
    setValue(undefined);
    setStatus({ kind: "connecting" });
    void (async () => {
      let attempt = 0;
      while (!abort.signal.aborted) {
        try {
          for await (const item of options.open(key, abort.signal)) {
            if (abort.signal.aborted) {
              return;
            }
            attempt = 0;
            setValue(() => item);
            setStatus({ kind: "live", updated: new Date() });
          }
        } catch (error) {
          if (abort.signal.aborted) {
            return;
          }
          const failed = failure(error, attempt, options.candidate?.(key));
          if (failed.kind !== "reconnecting") {
            setValue(undefined);
          }
          setStatus(failed);
        }
        await sleep(retryDelay(attempt), abort.signal);
        attempt++;
      }
    })();
  });

  return { value, status };
}

function failure(error: unknown, attempt: number, candidate: string | undefined): LiveStatus {
  const connectError = ConnectError.from(error);
  if (candidate && connectError.code === Code.NotFound) {
    return { kind: "unknown-candidate", candidate };
  }
  if (isComparisonMissing(connectError)) {
    return {
      kind: "missing",
      why:
        connectError.code === Code.Unimplemented
          ? "The comparison service (metrics-service) does not produce reports yet."
          : "The comparison service (metrics-service) is not reachable.",
    };
  }
  return { kind: "reconnecting", problem: connectError.rawMessage, attempt };
}

/** Waits `ms`, or less when the signal aborts (it never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
