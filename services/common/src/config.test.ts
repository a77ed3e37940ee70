import { describe, expect, it } from "vitest";
import { ConfigError, describeConfig, loadConfig, num, port, str } from "./config.js";

const spec = {
  PORT: port({ default: 8080, desc: "Where to listen." }),
  ROLE: str({ choices: ["PRIMARY", "SHADOW"], default: "PRIMARY", desc: "Which side this is." }),
  RATIO: num({ default: 0.5, desc: "A share." }),
};

describe("loadConfig", () => {
  it("reads prefixed variables and falls back to the defaults", () => {
    const config = loadConfig("X_", spec, { X_PORT: "9000" });
    expect(config).toEqual({ PORT: 9000, ROLE: "PRIMARY", RATIO: 0.5 });
  });

  it("names every bad setting in one readable line", () => {
    const load = () => loadConfig("X_", spec, { X_PORT: "http", X_ROLE: "CANARY" });
    expect(load).toThrow(ConfigError);
    try {
      load();
    } catch (error) {
      const message = (error as Error).message;
      expect(message).not.toContain("\n");
      expect(message).toContain("X_PORT");
      expect(message).toContain("X_ROLE");
    }
  });

  it("describes every setting with its default and help", () => {
    const text = describeConfig("X_", spec);
    expect(text).toContain("X_ROLE");
    expect(text).toContain('"PRIMARY"');
    expect(text).toContain("Which side this is.");
  });
});
