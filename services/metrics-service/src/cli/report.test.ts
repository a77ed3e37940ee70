import path from "node:path";
import { feedbackToken } from "@shadowmesh/common";
import { afterEach, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../config.js";
import { runToEnd } from "../testing/child.js";
import { startTestServer, type TestServer } from "../testing/harness.js";
import { pair, type RecordSpec, wire } from "../testing/records.js";
import { formatDuration, parseDuration, table } from "./format-report.js";

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

/** Runs the CLI exactly as `npm run shadow:report` does (tsx on the source). */
const runCli = (args: string[], env: Record<string, string> = {}) =>
  runToEnd(
    path.join(REPO_ROOT, "node_modules/.bin/tsx"),
    [path.join(REPO_ROOT, "services/metrics-service/src/cli/report.ts"), ...args],
    env,
  );

describe("shadow:report CLI", () => {
  it("prints the report as readable tables and as JSON", async () => {
    const secret = "cli-test-feedback-secret-0123456789abcdef";
    const server = await startTestServer({
      METRICS_SERVICE_VERDICT_MIN_PAIRS: "3",
      METRICS_SERVICE_FEEDBACK_SECRET: secret,
    });
    servers.push(server);
    const t = Date.now() - 1000;
    const records: RecordSpec[] = [
      ...pair("one", t, { label: "spam" }, { label: "spam" }),
      ...pair("two", t, { label: "ham" }, { label: "ham" }),
      ...pair("three", t, { label: "ham" }, { label: "spam" }),
      ...pair("four", t, { label: "ham" }, { code: 14 }),
      ...pair("blank", t, { code: 3 }, { code: 3 }),
      { requestId: "reused", role: "primary", timeMs: t, label: "ham", sha256: "aaaaaaaaaaaaaaaa" },
      { requestId: "reused", role: "shadow", timeMs: t, label: "spam", sha256: "bbbbbbbbbbbbbbbb" },
    ];
    await server.client.reportPredictions({ records: records.map(wire) });
    await server.client.submitFeedback({
      requestId: "three",
      label: "spam",
      feedbackToken: feedbackToken(secret, "three", 0),
    });

    const text = await runCli(["--window", "15m"], { SHADOW_REPORT_ADDRESS: `127.0.0.1:${server.port}` });
    expect(text.stderr).toBe("");
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('Shadow report for candidate "spam", window 15m');
    expect(text.stdout).toMatch(/^Verdict: (ROLLBACK|HOLD)$/m);
    expect(text.stdout).toMatch(/^ {2}pairs +6$/m);
    expect(text.stdout).toMatch(/^ {2}judged pairs \(the comparison's base\) +4$/m);
    expect(text.stdout).toMatch(/^ {2}conflicts \(same id, different input\) +1$/m);
    expect(text.stdout).toMatch(/^ {2}caller-error pairs \(nobody's fault\) +1$/m);
    expect(text.stdout).toMatch(/^Coverage: 100\.0 % — 6 of 6 settled primary records have a shadow record/m);
    expect(text.stdout).toMatch(/^Last records: primary \d{4}-.*shadow \d{4}-.*silent for 0\.0 s/m);
    expect(text.stdout).toMatch(/^ {2}InvalidArgument \(3\) +1 pairs$/m);
    expect(text.stdout).toMatch(/^ {2}\S+ +reused +sha256:aaaaaaaaaaaa len 42 +sha256:bbbbbbbbbbbb len 42$/m);
    expect(text.stdout).toMatch(/^ {2}all records \(total\) +6 +6$/m);
    expect(text.stdout).toMatch(/^ {2}all errors \(total\) +1 \(16\.7 %\) +2 \(33\.3 %\)$/m);
    expect(text.stdout).toMatch(/Agreement: 66\.7 % of 3 compared pairs/);
    expect(text.stdout).toMatch(/^ {2}ham +1 +1$/m);
    expect(text.stdout).toMatch(/^ {2}shadow +Unavailable \(14\) +1$/m);
    expect(text.stdout).toMatch(/^ {2}feedback accuracy +0\.0 % \(0\/1\) +100\.0 % \(1\/1\)$/m);
    expect(text.stdout).toMatch(/three +ham 0\.90 +spam 0\.90 +spam +sha256:sha-three/);

    const json = await runCli(["--json", "--address", `127.0.0.1:${server.port}`]);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as {
      totals: { pairCount: string };
      verdict: { decision: string };
    };
    expect(parsed.totals.pairCount).toBe("6");
    expect(parsed.verdict.decision).toMatch(/^DECISION_(ROLLBACK|HOLD)$/);
  });

  it("reports on one candidate with --candidate, lists them with --list, and without either lists them (exit 3)", async () => {
    const server = await startTestServer({ METRICS_SERVICE_VERDICT_MIN_PAIRS: "3" });
    servers.push(server);
    const t = Date.now() - 1000;
    const records: RecordSpec[] = [];
    for (const id of ["a", "b", "c", "d"]) {
      records.push(
        { requestId: id, role: "primary", timeMs: t, label: "spam" },
        { requestId: id, role: "shadow", candidate: "spam-v2", timeMs: t, label: "spam" },
        {
          requestId: id,
          role: "shadow",
          candidate: "spam-lite ☃",
          timeMs: t,
          label: id === "a" ? "spam" : "ham",
        },
      );
    }
    await server.client.reportPredictions({ records: records.map(wire) });
    const env = { SHADOW_REPORT_ADDRESS: `127.0.0.1:${server.port}` };

    const ambiguous = await runCli([], env);
    expect(ambiguous.code).toBe(3);
    expect(ambiguous.stderr).toMatch(/several candidates; pass --candidate NAME/);
    expect(ambiguous.stdout).toMatch(/^ {2}spam-lite ☃ +HOLD +4 +25\.0 %/m);
    expect(ambiguous.stdout).toMatch(/^ {2}spam-v2 +(PROMOTE|HOLD) +4 +100\.0 %/m);

    const listed = await runCli(["--list"], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toBe(ambiguous.stdout);

    const one = await runCli(["--candidate", "spam-lite ☃"], env);
    expect(one.stderr).toBe("");
    expect(one.code).toBe(0);
    expect(one.stdout).toContain('Shadow report for candidate "spam-lite ☃", window 1h');
    expect(one.stdout).toMatch(/Agreement: 25\.0 % of 4 compared pairs/);

    const json = await runCli(["--list", "--json"], env);
    expect((JSON.parse(json.stdout) as { candidate: string }[]).map((c) => c.candidate)).toEqual([
      "spam-lite ☃",
      "spam-v2",
    ]);
  });

  it("says in one line when metrics-service cannot be reached, and exits 1", async () => {
    const result = await runCli(["--address", "127.0.0.1:1", "--timeout-ms", "3000"]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(
      /metrics-service at 127\.0\.0\.1:1: (Unavailable|DeadlineExceeded).*is it running/,
    );
  });

  it("refuses a malformed window with exit code 2", async () => {
    const result = await runCli(["--window", "soon"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--window: expected a duration/);
  });
});

describe("CLI helpers", () => {
  it("parses and prints durations", () => {
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("250")).toBe(250);
    expect(parseDuration("0s")).toBeUndefined();
    expect(parseDuration("soon")).toBeUndefined();
    expect(formatDuration(3_600_000)).toBe("1h");
    expect(formatDuration(90_000)).toBe("90s");
    expect(formatDuration(1500)).toBe("1500ms");
  });

  it("aligns table columns", () => {
    expect(
      table([
        ["a", "1"],
        ["long", "100"],
      ]),
    ).toBe("  a       1\n  long  100");
  });
});
