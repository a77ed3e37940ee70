import { Code, ConnectError } from "@connectrpc/connect";
import type {
  ListCandidatesRequest,
  ShadowReport,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { renderHook } from "@solidjs/testing-library";
import { createSignal } from "solid-js";
import { describe, expect, it, vi } from "vitest";
import { apiWrapper } from "../testing";
import { controlledStream, fullReport } from "./testing";
import { useCandidates, useShadowReport } from "./useShadowReport";

const WAIT = { timeout: 5000, interval: 5 };

function agreeing(report: ShadowReport | undefined): bigint | undefined {
  return report?.agreement?.pairCount;
}

describe("useShadowReport", () => {
  it("asks for the candidate and the window, then publishes the first report and every update", async () => {
    const stream = controlledStream();
    const { result } = renderHook(
      () =>
        useShadowReport({ windowSeconds: () => 900, candidate: () => "spam-v2", retryDelayMs: () => 60_000 }),
      { wrapper: apiWrapper({ metrics: { watchShadowReport: stream.watch } }) },
    );
    expect(result.status().kind).toBe("connecting");
    expect(result.value()).toBeUndefined();
    await vi.waitFor(() => expect(stream.calls).toHaveLength(1), WAIT);
    expect(stream.calls[0]?.request.candidate).toBe("spam-v2");
    expect(stream.calls[0]?.request.window?.seconds).toBe(900n);
    expect(stream.calls[0]?.request.maxDisagreements).toBe(10);

    stream.push(fullReport(40));
    await vi.waitFor(() => expect(agreeing(result.value())).toBe(40n), WAIT);
    expect(result.status().kind).toBe("live");
    stream.push(fullReport(41));
    await vi.waitFor(() => expect(agreeing(result.value())).toBe(41n), WAIT);
    expect(stream.calls).toHaveLength(1);
  });

  it("keeps the last report while it reconnects after a stream error, backing off, and resets the backoff on data", async () => {
    const stream = controlledStream();
    const delays: number[] = [];
    const { result } = renderHook(
      () =>
        useShadowReport({
          windowSeconds: () => 3600,
          candidate: () => "spam-v2",
          retryDelayMs: (attempt) => {
            delays.push(attempt);
            return 1;
          },
        }),
      { wrapper: apiWrapper({ metrics: { watchShadowReport: stream.watch } }) },
    );
    await vi.waitFor(() => expect(stream.calls).toHaveLength(1), WAIT);
    stream.push(fullReport(40));
    await vi.waitFor(() => expect(result.status().kind).toBe("live"), WAIT);

    stream.fail(new ConnectError("upstream connect error", Code.Internal));
    await vi.waitFor(() => expect(stream.calls).toHaveLength(2), WAIT);
    expect(result.status()).toMatchObject({ kind: "reconnecting", problem: "upstream connect error" });
    expect(agreeing(result.value())).toBe(40n);
    stream.fail(new ConnectError("still broken", Code.Internal));
    await vi.waitFor(() => expect(stream.calls).toHaveLength(3), WAIT);
    expect(delays).toEqual([0, 1]);
    expect(result.status()).toMatchObject({ kind: "reconnecting", problem: "still broken", attempt: 1 });

    stream.push(fullReport(42));
    await vi.waitFor(() => expect(agreeing(result.value())).toBe(42n), WAIT);
    expect(result.status().kind).toBe("live");
    stream.fail(new ConnectError("once more", Code.Internal));
    await vi.waitFor(() => expect(stream.calls).toHaveLength(4), WAIT);
    expect(delays).toEqual([0, 1, 0]);
  });

  it("reopens a stream the server ended normally", async () => {
    const stream = controlledStream();
    const { result } = renderHook(
      () => useShadowReport({ windowSeconds: () => 3600, candidate: () => "spam-v2", retryDelayMs: () => 1 }),
      { wrapper: apiWrapper({ metrics: { watchShadowReport: stream.watch } }) },
    );
    await vi.waitFor(() => expect(stream.calls).toHaveLength(1), WAIT);
    stream.push(fullReport(40));
    await vi.waitFor(() => expect(result.status().kind).toBe("live"), WAIT);
    stream.end();
    await vi.waitFor(() => expect(stream.calls).toHaveLength(2), WAIT);
    stream.push(fullReport(43));
    await vi.waitFor(() => expect(agreeing(result.value())).toBe(43n), WAIT);
  });

  it("aborts the stream when the component goes away, and opens no other", async () => {
    const stream = controlledStream();
    const { cleanup } = renderHook(
      () => useShadowReport({ windowSeconds: () => 3600, candidate: () => "spam-v2", retryDelayMs: () => 1 }),
      { wrapper: apiWrapper({ metrics: { watchShadowReport: stream.watch } }) },
    );
    await vi.waitFor(() => expect(stream.calls).toHaveLength(1), WAIT);
    expect(stream.calls[0]?.signal.aborted).toBe(false);
    cleanup();
    await vi.waitFor(() => expect(stream.calls[0]?.signal.aborted).toBe(true), WAIT);
    // A reconnect loop that outlived its component would open a second stream after its 1 ms pause.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stream.calls).toHaveLength(1);
  });

  it("closes the old stream, forgets its report and opens a new one when the window or the candidate changes", async () => {
    const stream = controlledStream();
    const [seconds, setSeconds] = createSignal(3600);
    const [candidate, setCandidate] = createSignal("spam-v2");
    const { result } = renderHook(
      () => useShadowReport({ windowSeconds: seconds, candidate, retryDelayMs: () => 60_000 }),
      { wrapper: apiWrapper({ metrics: { watchShadowReport: stream.watch } }) },
    );
    await vi.waitFor(() => expect(stream.calls).toHaveLength(1), WAIT);
    stream.push(fullReport(40));
    await vi.waitFor(() => expect(result.value()).toBeDefined(), WAIT);

    setSeconds(900);
    await vi.waitFor(() => expect(stream.calls).toHaveLength(2), WAIT);
    expect(stream.calls[0]?.signal.aborted).toBe(true);
    expect(stream.calls[1]?.request.window?.seconds).toBe(900n);
    expect(result.value()).toBeUndefined();
    expect(result.status().kind).toBe("connecting");

    setCandidate("spam-tiny");
    await vi.waitFor(() => expect(stream.calls).toHaveLength(3), WAIT);
    expect(stream.calls[1]?.signal.aborted).toBe(true);
    expect(stream.calls[2]?.request).toMatchObject({ candidate: "spam-tiny", window: { seconds: 900n } });
  });

  it("says the comparison service is missing (UNIMPLEMENTED, UNAVAILABLE) and drops the stale report", async () => {
    const stream = controlledStream();
    const { result } = renderHook(
      () => useShadowReport({ windowSeconds: () => 3600, candidate: () => "spam-v2", retryDelayMs: () => 1 }),
      { wrapper: apiWrapper({ metrics: { watchShadowReport: stream.watch } }) },
    );
    await vi.waitFor(() => expect(stream.calls).toHaveLength(1), WAIT);
    stream.push(fullReport(40));
    await vi.waitFor(() => expect(result.value()).toBeDefined(), WAIT);
    stream.fail(new ConnectError("metrics-service is down", Code.Unavailable));
    await vi.waitFor(() => expect(result.status()).toMatchObject({ kind: "missing" }), WAIT);
    expect(result.value()).toBeUndefined();
    // It keeps trying and recovers by itself.
    await vi.waitFor(() => expect(stream.calls.length).toBeGreaterThanOrEqual(2), WAIT);
    stream.push(fullReport(44));
    await vi.waitFor(() => expect(agreeing(result.value())).toBe(44n), WAIT);
  });

  it("refuses a report about another candidate than the one asked for, and says why", async () => {
    const stream = controlledStream();
    const { result } = renderHook(
      () =>
        useShadowReport({
          windowSeconds: () => 3600,
          candidate: () => "spam-v2",
          retryDelayMs: () => 60_000,
        }),
      { wrapper: apiWrapper({ metrics: { watchShadowReport: stream.watch } }) },
    );
    await vi.waitFor(() => expect(stream.calls).toHaveLength(1), WAIT);
    stream.push(fullReport(40, "spam-tiny"));
    await vi.waitFor(
      () =>
        expect(result.status()).toMatchObject({
          kind: "reconnecting",
          problem: "asked for candidate spam-v2, the service answered about spam-tiny",
        }),
      WAIT,
    );
    expect(result.value()).toBeUndefined();
  });

  it("reads NOT_FOUND for a named candidate as an unknown candidate, not as a missing service", async () => {
    const { result } = renderHook(
      () =>
        useShadowReport({ windowSeconds: () => 3600, candidate: () => "nope", retryDelayMs: () => 60_000 }),
      {
        wrapper: apiWrapper({
          metrics: {
            // biome-ignore lint/correctness/useYield: it fails before its first update
            async *watchShadowReport() {
              throw new ConnectError("no candidate nope", Code.NotFound);
            },
          },
        }),
      },
    );
    await vi.waitFor(
      () => expect(result.status()).toEqual({ kind: "unknown-candidate", candidate: "nope" }),
      WAIT,
    );
  });
});

describe("useCandidates", () => {
  it("polls ListCandidates for the window, publishing each list, and backs off while the calls fail", async () => {
    const requests: ListCandidatesRequest[] = [];
    let fail = false;
    const { result } = renderHook(
      () => useCandidates({ windowSeconds: () => 900, pollMs: 5, retryDelayMs: () => 5 }),
      {
        wrapper: apiWrapper({
          metrics: {
            listCandidates(request) {
              requests.push(request);
              if (fail) {
                throw new ConnectError("database is locked", Code.Internal);
              }
              return {
                candidates: [
                  fullReport(requests.length, "spam-tiny"),
                  fullReport(requests.length, "spam-v2"),
                ],
              };
            },
          },
        }),
      },
    );
    await vi.waitFor(
      () => expect(result.value()?.map((report) => report.candidate)).toEqual(["spam-tiny", "spam-v2"]),
      WAIT,
    );
    expect(requests[0]?.window?.seconds).toBe(900n);
    const first = agreeing(result.value()?.[0]) ?? 0n;
    await vi.waitFor(() => expect(agreeing(result.value()?.[0])).toBeGreaterThan(first), WAIT);

    fail = true;
    await vi.waitFor(
      () => expect(result.status()).toMatchObject({ kind: "reconnecting", problem: "database is locked" }),
      WAIT,
    );
    expect(result.value()).toHaveLength(2);
    fail = false;
    await vi.waitFor(() => expect(result.status().kind).toBe("live"), WAIT);
  });

  it("gives up on a ListCandidates call that hangs (deadline) and retries, instead of freezing", async () => {
    let calls = 0;
    const { result } = renderHook(
      () =>
        useCandidates({
          windowSeconds: () => 3600,
          pollMs: 60_000,
          callTimeoutMs: 50,
          retryDelayMs: () => 1,
        }),
      {
        wrapper: apiWrapper({
          metrics: {
            async listCandidates(_request, context) {
              calls++;
              if (calls === 1) {
                // A stopped metrics-service: the call never answers until the client gives up.
                await new Promise((resolve) =>
                  context.signal.addEventListener("abort", resolve, { once: true }),
                );
              }
              return { candidates: [fullReport(5)] };
            },
          },
        }),
      },
    );
    await vi.waitFor(() => expect(result.value()?.[0]?.candidate).toBe("spam-v2"), WAIT);
    expect(calls).toBe(2);
  });

  it("publishes an empty list as an empty list (no candidates yet), not as missing data", async () => {
    const { result } = renderHook(() => useCandidates({ windowSeconds: () => 3600, pollMs: 60_000 }), {
      wrapper: apiWrapper({ metrics: { listCandidates: () => ({ candidates: [] }) } }),
    });
    await vi.waitFor(() => expect(result.value()).toEqual([]), WAIT);
    expect(result.status().kind).toBe("live");
  });
});
