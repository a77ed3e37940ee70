import { describe, expect, it } from "vitest";
import {
  bool,
  ConfigError,
  describeConfig,
  hostPort,
  int,
  loadConfig,
  ms,
  num,
  oneOf,
  percent,
  port,
  ratio,
  settingsTable,
  str,
} from "./config.js";

const spec = {
  PORT: port({ default: 8080, desc: "Where to listen." }),
  ROLE: str({ choices: ["PRIMARY", "SHADOW"], default: "PRIMARY", desc: "Which side this is." }),
  RATIO: num({ default: 0.5, desc: "A share." }),
};

/** The message of the ConfigError `read` throws. */
function problem(read: () => unknown): string {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).not.toContain("\n");
    return (error as Error).message;
  }
  throw new Error("no ConfigError");
}

describe("loadConfig", () => {
  it("reads prefixed variables and falls back to the defaults", () => {
    const config = loadConfig("X_", spec, { X_PORT: "9000" });
    expect(config).toEqual({ PORT: 9000, ROLE: "PRIMARY", RATIO: 0.5 });
  });

  it("names every bad setting in one readable line", () => {
    const message = problem(() => loadConfig("X_", spec, { X_PORT: "http", X_ROLE: "CANARY" }));
    expect(message).toBe(
      'invalid configuration: X_PORT must be an integer from 0 to 65535, got "http"; X_ROLE must be one of PRIMARY, SHADOW, got "CANARY"',
    );
  });

  it("describes every setting with its default, its rule and its help", () => {
    const text = describeConfig("X_", spec);
    expect(text).toContain("X_ROLE");
    expect(text).toContain('"PRIMARY"');
    expect(text).toContain("Which side this is. [PRIMARY, SHADOW]");
    expect(settingsTable("X_", spec).split("\n")).toEqual([
      "| Setting | Default | Values | Description |",
      "| --- | --- | --- | --- |",
      "| `X_PORT` | `8080` | port 0 to 65535 | Where to listen. |",
      '| `X_ROLE` | `"PRIMARY"` | PRIMARY, SHADOW | Which side this is. |',
      "| `X_RATIO` | `0.5` | number | A share. |",
    ]);
  });
});

describe("the vocabulary: every rule once, every error worded the same", () => {
  const read = (setting: Parameters<typeof loadConfig>[1][string], value: string) =>
    loadConfig("S_", { V: setting }, { S_V: value }).V;
  const cases: [string, Parameters<typeof loadConfig>[1][string], string, unknown][] = [
    ["int", int({ min: 1, max: 10, default: 5, desc: "" }), "7", 7],
    ["int", int({ min: 1, max: 10, default: 5, desc: "" }), " 10 ", 10],
    ["ms", ms({ default: 5, desc: "" }), "0", 0],
    ["port", port({ default: 1, desc: "" }), "0", 0],
    ["port", port({ default: 1, desc: "" }), "65535", 65535],
    ["num", num({ default: 1, desc: "" }), "-2.5", -2.5],
    ["ratio", ratio({ default: 1, desc: "" }), "0.25", 0.25],
    ["percent", percent({ default: 1, desc: "" }), "0", 0],
    ["percent above0", percent({ above0: true, default: 1, desc: "" }), "0.5", 0.5],
    ["hostPort", hostPort({ default: "a:1", desc: "" }), " metrics:50053 ", "metrics:50053"],
    ["hostPort", hostPort({ default: "a:1", desc: "" }), "[::1]:80", "[::1]:80"],
    ["hostPort optional", hostPort({ optional: true, default: "", desc: "" }), "", ""],
    ["bool", bool({ default: true, desc: "" }), "false", false],
    ["bool", bool({ default: false, desc: "" }), "1", true],
    ["oneOf", oneOf(["a", "b"], { default: "a", desc: "" }), "b", "b"],
    ["str", str({ default: "x", desc: "" }), "", ""],
  ];
  it.each(cases)("%s accepts %#", (_, setting, value, expected) => {
    expect(read(setting, value)).toEqual(expected);
  });

  const bad: [Parameters<typeof loadConfig>[1][string], string, string][] = [
    [int({ min: 1, max: 10, default: 5, desc: "" }), "0", 'S_V must be an integer from 1 to 10, got "0"'],
    [int({ min: 1, default: 5, desc: "" }), "1.5", 'S_V must be an integer ≥ 1, got "1.5"'],
    [int({ default: 5, desc: "" }), "", 'S_V must be an integer, got ""'],
    [ms({ default: 5, desc: "" }), "-1", 'S_V must be an integer ≥ 0, got "-1"'],
    [port({ default: 1, desc: "" }), "65536", 'S_V must be an integer from 0 to 65535, got "65536"'],
    [port({ default: 1, desc: "" }), "0x50", 'S_V must be an integer from 0 to 65535, got "0x50"'],
    [num({ default: 1, desc: "" }), "NaN", 'S_V must be a number, got "NaN"'],
    [num({ default: 1, desc: "" }), "Infinity", 'S_V must be a number, got "Infinity"'],
    [ratio({ default: 1, desc: "" }), "1.01", 'S_V must be between 0 and 1, got "1.01"'],
    [percent({ default: 1, desc: "" }), "101", 'S_V must be between 0 and 100, got "101"'],
    [
      percent({ above0: true, default: 1, desc: "" }),
      "0",
      'S_V must be a number above 0 and at most 100, got "0"',
    ],
    [hostPort({ default: "a:1", desc: "" }), "http://x:1", 'S_V must be host:port, got "http://x:1"'],
    [hostPort({ default: "a:1", desc: "" }), "", 'S_V must be host:port, got ""'],
    [hostPort({ default: "a:1", desc: "" }), "x:99999", 'S_V must be host:port, got "x:99999"'],
    [hostPort({ optional: true, default: "", desc: "" }), "x", 'S_V must be host:port or empty, got "x"'],
    [bool({ default: true, desc: "" }), "maybe", 'S_V must be true or false, got "maybe"'],
    [oneOf(["a", "b"], { default: "a", desc: "" }), "A", 'S_V must be one of a, b, got "A"'],
  ];
  it.each(bad)("refuses %# with one line naming the setting", (setting, value, message) => {
    expect(problem(() => read(setting, value))).toBe(`invalid configuration: ${message}`);
  });
});
