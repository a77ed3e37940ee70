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
    expect(config.DATA_DIR).toBe(path.join(REPO_ROOT, ".data/metrics"));
    expect(readConfig({ [`${P}DATA_DIR`]: "/var/lib/shadow" }).DATA_DIR).toBe("/var/lib/shadow");
  });

  it.each([
    [{ [`${P}GRPC_PORT`]: "9103" }, "GRPC_PORT and METRICS_SERVICE_METRICS_PORT must differ"],
    [{ [`${P}GRPC_PORT`]: "70000" }, "GRPC_PORT must be a port number"],
    [{ [`${P}JOIN_WINDOW_MS`]: "0" }, "JOIN_WINDOW_MS must be a positive number"],
    [
      { [`${P}RETENTION_HOURS`]: "1", [`${P}REPORT_WINDOW_MS`]: "7200000" },
      "REPORT_WINDOW_MS must not exceed",
    ],
    [{ [`${P}RETENTION_HOURS`]: "0.01" }, "JOIN_WINDOW_MS must be shorter than"],
    [{ [`${P}WATCH_MIN_INTERVAL_MS`]: "5000" }, "WATCH_MIN_INTERVAL_MS must not exceed"],
    [{ [`${P}VERDICT_MIN_AGREEMENT`]: "1.5" }, "VERDICT_MIN_AGREEMENT must be between 0 and 1"],
    [{ [`${P}MAX_DISAGREEMENTS`]: "100000" }, "MAX_DISAGREEMENTS must be between 0 and 500"],
    [{ [`${P}SQLITE_SYNCHRONOUS`]: "OFF" }, "SQLITE_SYNCHRONOUS"],
    [{ [`${P}STORE_RAW_TEXT`]: "maybe" }, "STORE_RAW_TEXT"],
    [{ [`${P}EXPECTED_MIRROR_PERCENT`]: "150" }, "EXPECTED_MIRROR_PERCENT must be between 0 and 100"],
    [{ [`${P}VERDICT_MIN_COVERAGE`]: "-0.1" }, "VERDICT_MIN_COVERAGE must be between 0 and 1"],
    [{ [`${P}VERDICT_MAX_SHADOW_SILENCE_MS`]: "0" }, "VERDICT_MAX_SHADOW_SILENCE_MS must be a positive"],
    [{ [`${P}FEEDBACK_SECRET`]: "short" }, "FEEDBACK_SECRET must be at least 32 characters"],
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
