import path from "node:path";
import { ConfigError } from "@shadowmesh/common";
import { describe, expect, it } from "vitest";
import { help, REPO_ROOT, readConfig, spec } from "./config.js";

const P = "METRICS_SERVICE_";

describe("readConfig", () => {
  it("has a default for every setting; the data dir is under the repository root", () => {
    const config = readConfig({});
    expect(config.GRPC_PORT).toBe(50053);
    expect(config.METRICS_PORT).toBe(9103);
    expect(config.JOIN_WINDOW_MS).toBe(60_000);
    expect(config.REPORT_WINDOW_MS).toBe(3_600_000);
    expect(config.STORE_RAW_TEXT).toBe(false);
    expect(config.MAX_CANDIDATES).toBe(16);
    expect(readConfig({ [`${P}MAX_CANDIDATES`]: "3" }).MAX_CANDIDATES).toBe(3);
    expect(config.DATA_DIR).toBe(path.join(REPO_ROOT, ".data/metrics"));
    expect(readConfig({ [`${P}DATA_DIR`]: "/var/lib/shadow" }).DATA_DIR).toBe("/var/lib/shadow");
  });

  it.each([
    [{ [`${P}GRPC_PORT`]: "9103" }, "GRPC_PORT and METRICS_SERVICE_METRICS_PORT must differ"],
    [
      { [`${P}GRPC_PORT`]: "70000" },
      'METRICS_SERVICE_GRPC_PORT must be an integer from 0 to 65535, got "70000"',
    ],
    [{ [`${P}MAX_CANDIDATES`]: "0" }, 'METRICS_SERVICE_MAX_CANDIDATES must be an integer ≥ 1, got "0"'],
    [{ [`${P}MAX_CANDIDATES`]: "2.5" }, 'METRICS_SERVICE_MAX_CANDIDATES must be an integer ≥ 1, got "2.5"'],
    [{ [`${P}JOIN_WINDOW_MS`]: "0" }, 'METRICS_SERVICE_JOIN_WINDOW_MS must be an integer ≥ 1, got "0"'],
    [
      { [`${P}RETENTION_HOURS`]: "1", [`${P}REPORT_WINDOW_MS`]: "7200000" },
      "REPORT_WINDOW_MS must not exceed",
    ],
    [{ [`${P}RETENTION_HOURS`]: "0.01" }, "JOIN_WINDOW_MS must be shorter than"],
    [{ [`${P}WATCH_MIN_INTERVAL_MS`]: "5000" }, "WATCH_MIN_INTERVAL_MS must not exceed"],
    [
      { [`${P}VERDICT_MIN_AGREEMENT`]: "1.5" },
      'METRICS_SERVICE_VERDICT_MIN_AGREEMENT must be between 0 and 1, got "1.5"',
    ],
    [
      { [`${P}MAX_DISAGREEMENTS`]: "100000" },
      'METRICS_SERVICE_MAX_DISAGREEMENTS must be an integer from 0 to 500, got "100000"',
    ],
    [
      { [`${P}SQLITE_SYNCHRONOUS`]: "OFF" },
      'METRICS_SERVICE_SQLITE_SYNCHRONOUS must be one of FULL, NORMAL, got "OFF"',
    ],
    [
      { [`${P}STORE_RAW_TEXT`]: "maybe" },
      'METRICS_SERVICE_STORE_RAW_TEXT must be true or false, got "maybe"',
    ],
    [
      { [`${P}EXPECTED_MIRROR_PERCENT`]: "150" },
      'METRICS_SERVICE_EXPECTED_MIRROR_PERCENT must be between 0 and 100, got "150"',
    ],
    [
      { [`${P}VERDICT_MIN_COVERAGE`]: "-0.1" },
      'METRICS_SERVICE_VERDICT_MIN_COVERAGE must be between 0 and 1, got "-0.1"',
    ],
    [
      { [`${P}VERDICT_MAX_SHADOW_SILENCE_MS`]: "0" },
      'METRICS_SERVICE_VERDICT_MAX_SHADOW_SILENCE_MS must be an integer ≥ 1, got "0"',
    ],
    [{ [`${P}FEEDBACK_SECRET`]: "short" }, "FEEDBACK_SECRET must be at least 32 characters"],
    [
      { [`${P}REPORT_SAMPLE_PERCENT`]: "0" },
      "REPORT_SAMPLE_PERCENT must be a number above 0 and at most 100",
    ],
    [
      { [`${P}VERDICT_MAX_LATENCY_P99_RATIO`]: "0" },
      "VERDICT_MAX_LATENCY_P99_RATIO must be a number above 0",
    ],
    [{ [`${P}VERDICT_LATENCY_SLACK_MS`]: "-1" }, "VERDICT_LATENCY_SLACK_MS must be a number ≥ 0"],
    [{ [`${P}RETENTION_HOURS`]: "0" }, "RETENTION_HOURS must be a number above 0"],
  ])("refuses %j with one readable line", (env, message) => {
    let error: unknown;
    try {
      readConfig(env);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).not.toContain("\n");
  });

  it("keeps the feedback secret readable but out of anything that serialises the configuration (the start log)", () => {
    const secret = "s".repeat(40);
    const config = readConfig({ [`${P}FEEDBACK_SECRET`]: secret });
    expect(config.FEEDBACK_SECRET).toBe(secret);
    expect(JSON.stringify(config)).not.toContain(secret);
    expect(readConfig({}).FEEDBACK_SECRET).toBe("");
    expect(readConfig({}).EXPECTED_MIRROR_PERCENT).toBe(100);
  });

  it("describes every setting in --help", () => {
    const text = help();
    for (const key of Object.keys(spec)) {
      expect(text).toContain(`${P}${key}`);
    }
  });
});
