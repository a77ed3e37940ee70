import path from "node:path";
import { ConfigError } from "@shadowmesh/common";
import { describe, expect, it } from "vitest";
import { help, REPO_ROOT, readConfig } from "./config.js";

describe("readConfig", () => {
  it("has a default for every setting and points at the bundled spam-v1 under the repository root", () => {
    const config = readConfig({});
    expect(config.ROLE).toBe("PRIMARY");
    expect(config.GRPC_PORT).toBe(50051);
    expect(config.METRICS_PORT).toBe(9101);
    expect(config.METRICS_SERVICE_ADDRESS).toBe("127.0.0.1:50053");
    expect(config.MODEL_DIR).toBe(path.join(REPO_ROOT, "models", "spam-v1"));
    expect(config.INSTANCE).not.toBe("");
  });

  it("configures the shadow through the role, never through anything the caller sends", () => {
    const config = readConfig({
      MODEL_SERVICE_ROLE: "SHADOW",
      MODEL_SERVICE_GRPC_PORT: "50052",
      MODEL_SERVICE_METRICS_PORT: "9102",
    });
    expect(config.ROLE).toBe("SHADOW");
  });

  it("keeps an absolute model directory and resolves a relative one against the repository root", () => {
    expect(readConfig({ MODEL_SERVICE_MODEL_DIR: "/srv/model" }).MODEL_DIR).toBe("/srv/model");
    expect(readConfig({ MODEL_SERVICE_MODEL_DIR: "models/spam-v2" }).MODEL_DIR).toBe(
      path.join(REPO_ROOT, "models", "spam-v2"),
    );
  });

  it("treats an empty metrics-service address as reporting off", () => {
    expect(readConfig({ MODEL_SERVICE_METRICS_SERVICE_ADDRESS: "" }).METRICS_SERVICE_ADDRESS).toBe("");
  });

  it.each([
    [{ MODEL_SERVICE_ROLE: "CANARY" }, /MODEL_SERVICE_ROLE/],
    [{ MODEL_SERVICE_GRPC_PORT: "9000", MODEL_SERVICE_METRICS_PORT: "9000" }, /must differ/],
    [{ MODEL_SERVICE_BATCH_MAX_SIZE: "0" }, /BATCH_MAX_SIZE/],
    [{ MODEL_SERVICE_BATCHING: "false", MODEL_SERVICE_BATCH_MAX_WAIT_US: "500" }, /no effect/],
    [{ MODEL_SERVICE_REPORT_BATCH_SIZE: "100", MODEL_SERVICE_REPORT_QUEUE_SIZE: "10" }, /must not exceed/],
    [{ MODEL_SERVICE_SHUTDOWN_TIMEOUT_MS: "1000" }, /less than/],
    [{ MODEL_SERVICE_METRICS_SERVICE_ADDRESS: "http://x" }, /host:port/],
    [
      { MODEL_SERVICE_GRPC_PORT: "70000" },
      /^invalid configuration: MODEL_SERVICE_GRPC_PORT must be an integer from 0 to 65535, got "70000"$/,
    ],
    [
      { MODEL_SERVICE_REPORT_SAMPLE_PERCENT: "101" },
      /MODEL_SERVICE_REPORT_SAMPLE_PERCENT must be between 0 and 100/,
    ],
    [
      { MODEL_SERVICE_BATCH_MAX_SIZE: "1.5" },
      /MODEL_SERVICE_BATCH_MAX_SIZE must be an integer from 1 to 4096/,
    ],
    [{ MODEL_SERVICE_ROLE: "shadow" }, /MODEL_SERVICE_ROLE must be one of PRIMARY, SHADOW, got "shadow"/],
    [{ MODEL_SERVICE_WATCH_MODEL: "maybe" }, /MODEL_SERVICE_WATCH_MODEL must be true or false/],
  ])("fails with one readable line on %o", (env, message) => {
    let error: unknown;
    try {
      readConfig(env);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain("\n");
  });

  it("documents every setting in --help", () => {
    const text = help();
    for (const name of [
      "ROLE",
      "MODEL_DIR",
      "BATCH_MAX_WAIT_US",
      "METRICS_SERVICE_ADDRESS",
      "REPORT_RAW_TEXT",
    ]) {
      expect(text).toContain(`MODEL_SERVICE_${name}`);
    }
  });
});
