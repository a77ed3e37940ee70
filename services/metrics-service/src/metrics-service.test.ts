import { spawn } from "node:child_process";
import { Code, ConnectError } from "@connectrpc/connect";
import { feedbackToken } from "@shadowmesh/common";
import { CheckOutcome, Decision } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { afterEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./testing/harness.js";
import { durationOfMs, pair, type RecordSpec, wire } from "./testing/records.js";
import { recordsSince } from "./testing/store-testing.js";

const servers: TestServer[] = [];
const SECRET = "a-feedback-secret-of-at-least-32-characters";
/** The feedback token the edge hands out with a prediction. */
const token = (requestId: string, batchIndex = 0) => feedbackToken(SECRET, requestId, batchIndex);

async function start(env: Record<string, string> = {}, now?: () => number) {
  const server = await startTestServer(env, now);
  servers.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function codeOf(promise: Promise<unknown>): Promise<Code | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

/** `n` agreeing pairs at `timeMs`, as the primary's and the shadow's batches. */
function batches(n: number, timeMs: number, prefix = "r") {
  const primary: RecordSpec[] = [];
  const shadow: RecordSpec[] = [];
  for (let i = 0; i < n; i++) {
    const [p, s] = pair(
      `${prefix}${i}`,
      timeMs,
      { label: i % 2 ? "spam" : "ham" },
      { label: i % 2 ? "spam" : "ham" },
    );
    primary.push(p);
    shadow.push(s);
  }
  return { primary: primary.map(wire), shadow: shadow.map(wire) };
}

describe("metrics-service over gRPC", () => {
  it("ingests batches idempotently: a retried batch is reported as duplicates and never double counts", async () => {
    const { client } = await start();
    const { primary, shadow } = batches(10, Date.now() - 1000);
    expect(await client.reportPredictions({ records: primary })).toMatchObject({
      acceptedCount: 10,
      duplicateCount: 0,
    });
    expect(await client.reportPredictions({ records: primary })).toMatchObject({
      acceptedCount: 0,
      duplicateCount: 10,
    });
    await client.reportPredictions({ records: shadow });
    const { report } = await client.getShadowReport({});
    expect(report?.totals?.primaryRecordCount).toBe(10n);
    expect(report?.totals?.pairCount).toBe(10n);
    expect(report?.agreement?.rate).toBe(1);
  });

  it("refuses malformed batches with INVALID_ARGUMENT and stores nothing from them", async () => {
    const { client } = await start({ METRICS_SERVICE_MAX_RECORDS_PER_BATCH: "5" });
    const good = wire({ requestId: "ok", role: "primary", timeMs: Date.now() });
    expect(await codeOf(client.reportPredictions({ records: [good, { ...good, requestId: "" }] }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(client.reportPredictions({ records: [good, { ...good, role: 0 }] }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(client.reportPredictions({ records: Array(6).fill(good) }))).toBe(
      Code.InvalidArgument,
    );
    const { report } = await client.getShadowReport({});
    expect(report?.totals?.requestCount).toBe(0n);
  });

  it("keeps feedback, says whether the request is known, and moves each role's accuracy", async () => {
    const { client } = await start({ METRICS_SERVICE_FEEDBACK_SECRET: SECRET });
    const t = Date.now() - 1000;
    await client.reportPredictions({
      records: [
        ...pair("a", t, { label: "spam" }, { label: "spam" }),
        ...pair("b", t, { label: "spam" }, { label: "ham" }),
      ].map(wire),
    });
    expect(
      await client.submitFeedback({ requestId: "a", label: "spam", feedbackToken: token("a") }),
    ).toMatchObject({
      requestKnown: true,
    });
    expect(
      await client.submitFeedback({ requestId: "b", label: "spam", feedbackToken: token("b") }),
    ).toMatchObject({
      requestKnown: true,
    });
    expect(
      await client.submitFeedback({ requestId: "b", label: "ham", feedbackToken: token("b") }),
    ).toMatchObject({
      requestKnown: true,
    });
    expect(
      await client.submitFeedback({ requestId: "nobody", label: "ham", feedbackToken: token("nobody") }),
    ).toMatchObject({
      requestKnown: false,
    });
    expect(
      await codeOf(client.submitFeedback({ requestId: "a", label: "", feedbackToken: token("a") })),
    ).toBe(Code.InvalidArgument);
    expect(
      await codeOf(client.submitFeedback({ requestId: "", label: "spam", feedbackToken: token("") })),
    ).toBe(Code.InvalidArgument);
    const { report } = await client.getShadowReport({});
    expect([report?.primary?.feedbackCount, report?.primary?.correctCount]).toEqual([2n, 1n]);
    expect([report?.shadow?.feedbackCount, report?.shadow?.correctCount]).toEqual([2n, 2n]);
    expect(report?.primary?.accuracy).toBe(0.5);
    expect(report?.shadow?.accuracy).toBe(1);
    expect(report?.recentDisagreements.map((d) => [d.requestId, d.feedbackLabel])).toEqual([["b", "ham"]]);
  });

  it("reports records as pending inside the join window and unmatched after it", async () => {
    let now = 1_800_000_000_000;
    const { client } = await start({ METRICS_SERVICE_JOIN_WINDOW_MS: "5000" }, () => now);
    await client.reportPredictions({
      records: [
        wire({ requestId: "p", role: "primary", timeMs: now }),
        wire({ requestId: "s", role: "shadow", timeMs: now }),
      ],
    });
    let { report } = await client.getShadowReport({});
    expect(report?.totals?.pendingCount).toBe(2n);
    now += 5000;
    ({ report } = await client.getShadowReport({}));
    expect(report?.totals?.pendingCount).toBe(0n);
    expect(report?.totals?.unmatchedPrimaryCount).toBe(1n);
    expect(report?.totals?.unmatchedShadowCount).toBe(1n);
  });

  it("honours the requested window and number of disagreements, and refuses a negative window", async () => {
    const { client } = await start();
    const now = Date.now();
    const records: RecordSpec[] = [];
    for (let i = 0; i < 5; i++) {
      records.push(...pair(`recent${i}`, now - 1000 - i, { label: "spam" }, { label: "ham" }));
    }
    records.push(...pair("old", now - 600_000, { label: "spam" }, { label: "ham" }));
    await client.reportPredictions({ records: records.map(wire) });
    const all = await client.getShadowReport({ maxDisagreements: 100 });
    expect(all.report?.totals?.pairCount).toBe(6n);
    expect(all.report?.recentDisagreements).toHaveLength(6);
    const recent = await client.getShadowReport({ window: durationOfMs(60_000), maxDisagreements: 2 });
    expect(recent.report?.totals?.pairCount).toBe(5n);
    expect(recent.report?.recentDisagreements.map((d) => d.requestId)).toEqual(["recent0", "recent1"]);
    expect(await codeOf(client.getShadowReport({ window: { seconds: -5n } }))).toBe(Code.InvalidArgument);
  });

  it("drops raw text unless the operator opted in", async () => {
    const t = Date.now() - 1000;
    const records = pair(
      "x",
      t,
      { label: "spam", text: "cheap pills" },
      { label: "ham", text: "cheap pills" },
    ).map(wire);
    const off = await start();
    await off.client.reportPredictions({ records });
    expect(recordsSince(off.store, 0).map((r) => r.inputText)).toEqual([null, null]);
    const offReport = await off.client.getShadowReport({});
    expect(offReport.report?.recentDisagreements[0]?.input?.text).toBe("");
    expect(offReport.report?.recentDisagreements[0]?.input?.sha256).toBe("sha-x");
    const on = await start({ METRICS_SERVICE_STORE_RAW_TEXT: "true" });
    await on.client.reportPredictions({ records });
    const onReport = await on.client.getShadowReport({});
    expect(onReport.report?.recentDisagreements[0]?.input?.text).toBe("cheap pills");
  });

  it("gives the verdict with every check over the API", async () => {
    const { client } = await start({ METRICS_SERVICE_VERDICT_MIN_PAIRS: "10" });
    const { primary, shadow } = batches(40, Date.now() - 1000);
    await client.reportPredictions({ records: primary });
    let { report } = await client.getShadowReport({});
    expect(report?.verdict?.decision).toBe(Decision.INSUFFICIENT_DATA);
    await client.reportPredictions({ records: shadow });
    ({ report } = await client.getShadowReport({}));
    expect(report?.verdict?.decision).toBe(Decision.PROMOTE);
    expect(report?.verdict?.checks.find((c) => c.name === "agreement_lower_bound")?.outcome).toBe(
      CheckOutcome.PASS,
    );
  });
});

describe("WatchShadowReport", () => {
  it("sends a report at once, a new one when data arrives, and ends when the client goes away", async () => {
    const server = await start();
    const abort = new AbortController();
    const stream = server.client.watchShadowReport(
      { minInterval: durationOfMs(10) },
      { signal: abort.signal },
    );
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    expect(first.value?.report?.totals?.pairCount).toBe(0n);

    const { primary, shadow } = batches(3, Date.now() - 1000);
    await server.client.reportPredictions({ records: [...primary, ...shadow] });
    // Each update differs from the one before; wait (bounded) until one shows the three pairs.
    let pairs = 0n;
    for (let i = 0; i < 10 && pairs !== 3n; i++) {
      const next = await iterator.next();
      expect(next.done).toBe(false);
      pairs = next.value?.report?.totals?.pairCount ?? 0n;
    }
    expect(pairs).toBe(3n);
    abort.abort();
    expect(
      await codeOf(
        (async () => {
          while (!(await iterator.next()).done) {}
        })(),
      ),
    ).toBe(Code.Canceled);
  });

  it("ends open streams with UNAVAILABLE when the server shuts down, so that clients reconnect", async () => {
    const server = await start();
    const iterator = server.client.watchShadowReport({})[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    server.shutdown.abort();
    const code = await codeOf(
      (async () => {
        for (let i = 0; i < 100; i++) {
          if ((await iterator.next()).done) {
            return;
          }
        }
      })(),
    );
    expect(code).toBe(Code.Unavailable);
  });

  it("sends an update when time alone changes the report: a pending record turns unmatched", async () => {
    let now = 1_800_000_000_000;
    const server = await start(
      { METRICS_SERVICE_JOIN_WINDOW_MS: "5000", METRICS_SERVICE_WATCH_REFRESH_MS: "20" },
      () => now,
    );
    await server.client.reportPredictions({
      records: [wire({ requestId: "alone", role: "primary", timeMs: now })],
    });
    const abort = new AbortController();
    const iterator = server.client
      .watchShadowReport({ minInterval: durationOfMs(10) }, { signal: abort.signal })
      [Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value?.report?.totals?.pendingCount).toBe(1n);
    now += 5000;
    const second = await iterator.next();
    expect(second.value?.report?.totals?.pendingCount).toBe(0n);
    expect(second.value?.report?.totals?.unmatchedPrimaryCount).toBe(1n);
    abort.abort();
  });

  it("refuses a negative min_interval", async () => {
    const server = await start();
    const iterator = server.client
      .watchShadowReport({ minInterval: { seconds: -1n } })
      [Symbol.asyncIterator]();
    expect(await codeOf(iterator.next())).toBe(Code.InvalidArgument);
  });
});

describe("Prometheus", () => {
  async function promtool(text: string): Promise<{ code: number | null; output: string }> {
    const child = spawn("promtool", ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stdin.end(text);
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    return { code, output };
  }

  it("exports the comparison and the verdict as gauges that promtool accepts", async () => {
    const server = await start({
      METRICS_SERVICE_VERDICT_MIN_PAIRS: "10",
      METRICS_SERVICE_FEEDBACK_SECRET: SECRET,
    });
    const t = Date.now() - 1000;
    const records: RecordSpec[] = [];
    for (let i = 0; i < 20; i++) {
      records.push(...pair(`g${i}`, t, { label: "spam" }, { label: i < 19 ? "spam" : "ham" }));
    }
    records.push({ requestId: "lonely", role: "primary", timeMs: t - 120_000 });
    records.push(...pair("err", t, { label: "ham" }, { code: 14 }));
    await server.client.reportPredictions({ records: records.map(wire) });
    await server.client.reportPredictions({ records: records.map(wire) });
    await server.client.submitFeedback({ requestId: "g19", label: "spam", feedbackToken: token("g19") });
    await server.client
      .submitFeedback({ requestId: "g18", label: "banana", feedbackToken: token("g18") })
      .catch(() => {});
    await server.client.submitFeedback({ requestId: "g17", label: "spam" }).catch(() => {});
    // A reused id: the shadow's record fingerprints another text.
    await server.client.reportPredictions({
      records: [
        wire({ requestId: "dup", role: "primary", timeMs: t, label: "spam" }),
        wire({ requestId: "dup", role: "shadow", timeMs: t, label: "ham", sha256: "other" }),
        ...pair("bad", t, { code: 3 }, { code: 3 }).map(wire),
      ],
    });

    const text = await server.registry.metrics();
    const result = await promtool(text);
    expect(result.output).toBe("");
    expect(result.code).toBe(0);
    const line = (name: string) =>
      text
        .split("\n")
        .find((l) => l.startsWith(name))
        ?.split(" ")
        .at(-1);
    expect(line('shadowmesh_shadow_pairs{candidate="spam"')).toBe("23");
    expect(line('shadowmesh_shadow_compared_pairs{candidate="spam"')).toBe("20");
    expect(line('shadowmesh_shadow_unmatched_records{candidate="spam",side="primary"')).toBe("1");
    expect(line('shadowmesh_shadow_label_flips{candidate="spam",from="spam",to="ham"')).toBe("1");
    expect(line('shadowmesh_shadow_label_flips{candidate="spam",from="spam",to="spam"')).toBe("19");
    expect(line('shadowmesh_shadow_feedback{candidate="spam",role="shadow",correct="false"')).toBe("1");
    expect(line('shadowmesh_shadow_feedback{candidate="spam",role="primary",correct="true"')).toBe("1");
    expect(line('shadowmesh_shadow_errors{candidate="spam",role="shadow",grpc_code="14"')).toBe("1");
    expect(line('shadowmesh_records_ingested_total{role="primary",outcome="duplicate"')).toBe("22");
    expect(line('shadowmesh_shadow_agreement_ratio{candidate="spam"')).toBe(String(19 / 20));
    expect(line('shadowmesh_verdict{candidate="spam",decision="ROLLBACK"')).toBe("1");
    expect(line('shadowmesh_verdict{candidate="spam",decision="PROMOTE"')).toBe("0");
    expect(Number(line("shadowmesh_shadow_report_duration_seconds{"))).toBeGreaterThan(0);
    expect(line('shadowmesh_shadow_conflicts{candidate="spam"')).toBe("1");
    expect(line('shadowmesh_shadow_caller_error_pairs{candidate="spam",grpc_code="3"')).toBe("1");
    expect(line('shadowmesh_shadow_judged_pairs{candidate="spam"')).toBe("21");
    expect(line('shadowmesh_shadow_records{candidate="spam",role="primary"')).toBe("24");
    expect(line('shadowmesh_shadow_expected_mirror_ratio{candidate="spam"')).toBe("1");
    expect(Number(line('shadowmesh_shadow_coverage_ratio{candidate="spam"'))).toBeCloseTo(23 / 24);
    expect(line('shadowmesh_shadow_settled_primary_records{candidate="spam"')).toBe("24");
    expect(line('shadowmesh_shadow_silence_seconds{candidate="spam"')).toBe("0");
    expect(
      Number(line('shadowmesh_shadow_last_record_timestamp_seconds{candidate="spam",role="primary"')),
    ).toBe(t / 1000);
    expect(line('shadowmesh_feedback_refused_total{grpc_code="3"')).toBe("1");
    expect(line('shadowmesh_feedback_refused_total{grpc_code="7"')).toBe("1");
    expect(text).toMatch(/^grpc_server_handled_total\{.*grpc_method="ReportPredictions".*\} 3$/m);
  });
});
