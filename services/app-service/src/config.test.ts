import { ConfigError } from "@shadowmesh/common";
import { describe, expect, it } from "vitest";
import { readConfig } from "./config.js";

describe("app-service configuration", () => {
  it("accepts port 0 (any free port) for both ports", () => {
    const config = readConfig({ APP_SERVICE_PORT: "0", APP_SERVICE_METRICS_PORT: "0" });
    expect([config.PORT, config.METRICS_PORT]).toEqual([0, 0]);
  });

  it("has defaults for the local mesh: primary 50051, metrics-service 50053, no mirroring, no web app", () => {
    const config = readConfig({});
    expect(config.PORT).toBe(8080);
    expect(config.METRICS_PORT).toBe(9100);
    expect(config.MODEL_SERVICE_ADDRESS).toBe("127.0.0.1:50051");
    expect(config.METRICS_SERVICE_ADDRESS).toBe("127.0.0.1:50053");
    expect(config.SHADOW_ADDRESS).toBe("");
    expect(config.MIRROR_PERCENT).toBe(100);
    expect(config.DEADLINE_MS).toBe(2000);
    expect(config.WEB_DIR).toBe("");
    expect(config.CORS_ORIGINS).toEqual([]);
    expect(config.PUBLIC_HOSTS).toEqual([]);
    expect(config.TRUST_FORWARDED_PROTO).toBe(false);
    expect(config.FEEDBACK_SECRET).toBe("");
    expect(config.INSTANCE).not.toBe("");
  });

  it("parses the public hosts (lower case, with or without a port)", () => {
    const config = readConfig({
      APP_SERVICE_PUBLIC_HOSTS:
        " Shadowmesh.Example.com, app-service:8080,app-service.shadowmesh.svc.cluster.local:8080,[::1]:8080 ",
    });
    expect(config.PUBLIC_HOSTS).toEqual([
      "shadowmesh.example.com",
      "app-service:8080",
      "app-service.shadowmesh.svc.cluster.local:8080",
      "[::1]:8080",
    ]);
  });

  it("accepts a feedback secret of 32 characters or more", () => {
    expect(readConfig({ APP_SERVICE_FEEDBACK_SECRET: "x".repeat(32) }).FEEDBACK_SECRET).toBe("x".repeat(32));
  });

  it("parses the CORS allowlist", () => {
    const config = readConfig({ APP_SERVICE_CORS_ORIGINS: "http://localhost:5173, https://app.example/" });
    expect(config.CORS_ORIGINS).toEqual(["http://localhost:5173", "https://app.example"]);
  });

  it.each([
    [
      { APP_SERVICE_MIRROR_PERCENT: "101" },
      'APP_SERVICE_MIRROR_PERCENT must be between 0 and 100, got "101"',
    ],
    [{ APP_SERVICE_MIRROR_PERCENT: "-1" }, 'APP_SERVICE_MIRROR_PERCENT must be between 0 and 100, got "-1"'],
    [{ APP_SERVICE_PORT: "0x50" }, 'APP_SERVICE_PORT must be an integer from 0 to 65535, got "0x50"'],
    [
      { APP_SERVICE_TRUST_FORWARDED_PROTO: "maybe" },
      "APP_SERVICE_TRUST_FORWARDED_PROTO must be true or false",
    ],
    [{ APP_SERVICE_MAX_MIRRORS_IN_FLIGHT: "-1" }, "APP_SERVICE_MAX_MIRRORS_IN_FLIGHT must be an integer ≥ 0"],
    [{ APP_SERVICE_PORT: "9000", APP_SERVICE_METRICS_PORT: "9000" }, "must differ"],
    [{ APP_SERVICE_SHADOW_ADDRESS: "127.0.0.1:50051" }, "must differ from APP_SERVICE_MODEL_SERVICE_ADDRESS"],
    [
      { APP_SERVICE_SHADOW_ADDRESS: "nonsense" },
      'APP_SERVICE_SHADOW_ADDRESS must be host:port or empty, got "nonsense"',
    ],
    [
      { APP_SERVICE_MODEL_SERVICE_ADDRESS: "http://x:1" },
      'APP_SERVICE_MODEL_SERVICE_ADDRESS must be host:port, got "http://x:1"',
    ],
    [{ APP_SERVICE_DEADLINE_MS: "0" }, 'APP_SERVICE_DEADLINE_MS must be an integer ≥ 1, got "0"'],
    [{ APP_SERVICE_CORS_ORIGINS: "https://app.example/path" }, "without a path"],
    [{ APP_SERVICE_CORS_ORIGINS: "*" }, "is not an origin"],
    [{ APP_SERVICE_PUBLIC_HOSTS: "https://app.example" }, "is not host[:port]"],
    [{ APP_SERVICE_PUBLIC_HOSTS: "app.example/path" }, "is not host[:port]"],
    [{ APP_SERVICE_PUBLIC_HOSTS: "*" }, "is not host[:port]"],
    [{ APP_SERVICE_FEEDBACK_SECRET: "short" }, "FEEDBACK_SECRET must be at least 32 characters"],
  ])("refuses %j with one readable line", (env, message) => {
    expect(() => readConfig(env)).toThrow(ConfigError);
    expect(() => readConfig(env)).toThrow(message);
  });
});
