import { Code, ConnectError } from "@connectrpc/connect";
import { feedbackToken } from "@shadowmesh/common";
import { Decision, Role } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { afterEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./testing/harness.js";
import { pair, type RecordSpec, sha256Of, wire } from "./testing/records.js";
import { recordsSince } from "./testing/store-testing.js";

/** Issue 10 as a hostile user tries it, through the real gRPC service. */

const SECRET = "0123456789abcdef0123456789abcdef-test-secret";
const NOW = 1_800_000_000_000;
const servers: TestServer[] = [];

async function start(env: Record<string, string> = {}) {
  const server = await startTestServer(
    { METRICS_SERVICE_FEEDBACK_SECRET: SECRET, METRICS_SERVICE_VERDICT_MIN_FEEDBACK: "5", ...env },
    () => NOW,
  );
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

/** 200 pairs: 190 agree, 10 (d0…d9) where the primary says spam and the shadow ham. PROMOTE without feedback. */
function traffic(): RecordSpec[] {
  const records: RecordSpec[] = [];
  const t = NOW - 10 * 60_000;
  for (let i = 0; i < 190; i++) {
    const label = i % 2 ? "spam" : "ham";
    records.push(...pair(`a${i}`, t + i, { label }, { label }));
  }
  for (let i = 0; i < 10; i++) {
    records.push(...pair(`d${i}`, t + 200 + i, { label: "spam" }, { label: "ham" }));
  }
  return records;
}

/** The feedback that would push ROLLBACK: the primary's label on every disagreement, and 30 agreeing pairs. */
const attack = () => [
  ...Array.from({ length: 10 }, (_, i) => ({ requestId: `d${i}`, label: "spam" })),
  ...Array.from({ length: 30 }, (_, i) => ({ requestId: `a${i}`, label: i % 2 ? "spam" : "ham" })),
];

describe("feedback needs proof", () => {
  it("refuses feedback without a token, with a wrong one, or with another index's token; the verdict stays", async () => {
    const { client } = await start();
    await client.reportPredictions({ records: traffic().map(wire) });
    const before = (await client.getShadowReport({})).report;
    expect(before?.verdict?.decision).toBe(Decision.PROMOTE);

    for (const { requestId, label } of attack()) {
      expect(await codeOf(client.submitFeedback({ requestId, label }))).toBe(Code.PermissionDenied);
      expect(await codeOf(client.submitFeedback({ requestId, label, feedbackToken: "x".repeat(43) }))).toBe(
        Code.PermissionDenied,
      );
      expect(
        await codeOf(
          client.submitFeedback({
            requestId,
            label,
            feedbackToken: feedbackToken("another-secret", requestId, 0),
          }),
        ),
      ).toBe(Code.PermissionDenied);
      expect(
        await codeOf(
          client.submitFeedback({
            requestId,
            batchIndex: 0,
            label,
            feedbackToken: feedbackToken(SECRET, requestId, 1),
          }),
        ),
      ).toBe(Code.PermissionDenied);
    }
    const after = (await client.getShadowReport({})).report;
    expect(after?.verdict?.decision).toBe(Decision.PROMOTE);
    expect(after?.primary?.feedbackCount).toBe(0n);
    expect(store(after)).toEqual(store(before));

    // The same feedback with the tokens the edge handed out is evidence, and it moves the verdict.
    for (const { requestId, label } of attack()) {
      await client.submitFeedback({ requestId, label, feedbackToken: feedbackToken(SECRET, requestId, 0) });
    }
    const proven = (await client.getShadowReport({})).report;
    expect(proven?.primary?.accuracy).toBe(1);
    expect(proven?.shadow?.accuracy).toBe(0.75);
    expect(proven?.verdict?.decision).toBe(Decision.ROLLBACK);
  });

  it("answers FAILED_PRECONDITION when feedback is disabled (no secret)", async () => {
    const { client } = await start({ METRICS_SERVICE_FEEDBACK_SECRET: "" });
    await client.reportPredictions({ records: pair("a", NOW - 1000, { label: "spam" }).map(wire) });
    expect(
      await codeOf(
        client.submitFeedback({
          requestId: "a",
          label: "spam",
          feedbackToken: feedbackToken(SECRET, "a", 0),
        }),
      ),
    ).toBe(Code.FailedPrecondition);
  });

  it('refuses the label "banana" with INVALID_ARGUMENT and leaves accuracy as it was', async () => {
    const { client } = await start();
    await client.reportPredictions({ records: traffic().map(wire) });
    const token = (id: string) => feedbackToken(SECRET, id, 0);
    await client.submitFeedback({ requestId: "a0", label: "ham", feedbackToken: token("a0") });
    const before = (await client.getShadowReport({})).report;
    for (let i = 0; i < 30; i++) {
      expect(
        await codeOf(
          client.submitFeedback({ requestId: `a${i}`, label: "banana", feedbackToken: token(`a${i}`) }),
        ),
      ).toBe(Code.InvalidArgument);
    }
    const after = (await client.getShadowReport({})).report;
    expect([after?.primary?.feedbackCount, after?.primary?.accuracy]).toEqual([1n, 1]);
    expect(after?.primary).toEqual(before?.primary);
    // A request not reported yet is checked against the labels of the models seen recently.
    expect(
      await codeOf(
        client.submitFeedback({ requestId: "later", label: "banana", feedbackToken: token("later") }),
      ),
    ).toBe(Code.InvalidArgument);
    expect(
      await client.submitFeedback({ requestId: "later", label: "spam", feedbackToken: token("later") }),
    ).toMatchObject({ requestKnown: false });
  });
});

describe("joins cannot be forged", () => {
  it("counts a reused request id with a different text as a conflict, not a disagreement", async () => {
    const server = await start({ METRICS_SERVICE_VERDICT_MIN_PAIRS: "1" });
    const t = NOW - 120_000;
    await server.client.reportPredictions({
      records: [
        ...pair("agree", t, { label: "ham" }, { label: "ham" }),
        { requestId: "reused", role: "primary", timeMs: t, label: "spam", sha256: sha256Of("cheap pills") },
        {
          requestId: "reused",
          role: "shadow",
          timeMs: t + 5,
          label: "ham",
          sha256: sha256Of("lunch at noon?"),
        },
      ].map((r) => wire(r as RecordSpec)),
    });
    const { report } = await server.client.getShadowReport({});
    expect(report?.totals?.pairCount).toBe(2n);
    expect(report?.totals?.conflictCount).toBe(1n);
    expect(report?.agreement?.pairCount).toBe(1n);
    expect(report?.agreement?.rate).toBe(1);
    expect(report?.recentDisagreements).toEqual([]);
    expect(report?.labelFlips.map((f) => [f.primaryLabel, f.shadowLabel, f.count])).toEqual([
      ["ham", "ham", 1n],
    ]);
    expect(
      report?.recentConflicts.map((c) => [c.requestId, c.primaryInput?.sha256, c.shadowInput?.sha256]),
    ).toEqual([["reused", sha256Of("cheap pills"), sha256Of("lunch at noon?")]]);
    expect(await server.registry.metrics()).toMatch(/^shadowmesh_shadow_conflicts\{[^}]*\} 1$/m);
  });
});

describe("shadow failures seen by the mirror", () => {
  const ok: RecordSpec = {
    requestId: "hung",
    role: "shadow",
    timeMs: NOW - 120_000,
    label: "ham",
    latencyMs: 590,
  };
  const mirror: RecordSpec = {
    requestId: "hung",
    role: "shadow",
    timeMs: NOW - 120_000 + 2,
    code: 4,
    latencyMs: 1000,
    source: "mirror",
  };
  const primary: RecordSpec = { requestId: "hung", role: "primary", timeMs: NOW - 120_000 - 1, label: "ham" };

  it.each([
    ["after", [ok, mirror]],
    ["before", [mirror, ok]],
  ])(
    "the MIRROR DEADLINE_EXCEEDED record wins when it arrives %s the shadow's own OK record",
    async (_, order) => {
      const { client, store } = await start();
      await client.reportPredictions({ records: [wire(primary)] });
      for (const record of order as RecordSpec[]) {
        await client.reportPredictions({ records: [wire(record)] });
      }
      // Both again: nothing changes (the same source twice is a duplicate).
      for (const record of order as RecordSpec[]) {
        expect(await client.reportPredictions({ records: [wire(record)] })).toMatchObject({
          acceptedCount: 0,
          duplicateCount: 1,
        });
      }
      const shadow = recordsSince(store, 0).filter((r) => r.role === 2);
      expect(shadow.map((r) => [r.grpcCode, r.source, r.latencyMs])).toEqual([[4, 2, 1000]]);
      const { report } = await client.getShadowReport({});
      expect(report?.totals?.pairCount).toBe(1n);
      expect(report?.agreement?.pairCount).toBe(0n);
      expect(report?.errors.map((e) => [e.role, e.grpcStatusCode, e.count])).toEqual([[Role.SHADOW, 4, 1n]]);
    },
  );
});

describe("ids are validated", () => {
  const bad = ["x".repeat(129), "a\u0001b", "tab\there", "new\nline", "with space", "caf\u00e9", ""];

  it("refuses records whose request id is too long, empty, or not printable ASCII, and stores nothing", async () => {
    const { client } = await start();
    const good = wire({ requestId: "x".repeat(128), role: "primary", timeMs: NOW - 1000, label: "ham" });
    expect(await client.reportPredictions({ records: [good] })).toMatchObject({ acceptedCount: 1 });
    for (const requestId of bad) {
      const other = wire({ requestId: "fine", role: "primary", timeMs: NOW - 1000, label: "ham" });
      expect(await codeOf(client.reportPredictions({ records: [other, { ...other, requestId }] }))).toBe(
        Code.InvalidArgument,
      );
    }
    const tooFar = wire({ requestId: "fine", role: "primary", timeMs: NOW - 1000, batchIndex: 100_000 });
    expect(await codeOf(client.reportPredictions({ records: [tooFar] }))).toBe(Code.InvalidArgument);
    const { report } = await client.getShadowReport({});
    expect(report?.totals?.primaryRecordCount).toBe(1n);
  });

  it("refuses feedback whose request id or batch index is malformed, even with a valid token", async () => {
    const { client } = await start();
    await client.reportPredictions({ records: pair("a", NOW - 1000, { label: "spam" }).map(wire) });
    for (const requestId of bad) {
      expect(
        await codeOf(
          client.submitFeedback({
            requestId,
            label: "spam",
            feedbackToken: feedbackToken(SECRET, requestId, 0),
          }),
        ),
      ).toBe(Code.InvalidArgument);
    }
    expect(
      await codeOf(
        client.submitFeedback({
          requestId: "a",
          batchIndex: 100_000,
          label: "spam",
          feedbackToken: feedbackToken(SECRET, "a", 100_000),
        }),
      ),
    ).toBe(Code.InvalidArgument);
  });
});

/** What feedback can change in a report. */
function store(report: { primary?: unknown; shadow?: unknown; verdict?: unknown } | undefined) {
  return [report?.primary, report?.shadow, report?.verdict];
}
