import { ConfigError } from "@shadowmesh/common";
import { describe, expect, it } from "vitest";
import { readConfig } from "./config.js";
import { describeShadows, readShadows, type ShadowSettings } from "./shadows.js";

/** APP_SERVICE_SHADOWS and the one-shadow settings it extends: parsing, defaults and refusals (one line each). */

const base: ShadowSettings = {
  SHADOWS: "",
  SHADOW_ADDRESS: "",
  SHADOW_NAME: "",
  MIRROR_PERCENT: 100,
  MAX_MIRRORS_IN_FLIGHT: 64,
  MODEL_SERVICE_ADDRESS: "127.0.0.1:50051",
};

const read = (change: Partial<ShadowSettings>) => readShadows("APP_SERVICE_", { ...base, ...change });

/** The ConfigError message `fn` throws (fails when it throws nothing or something else). */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("APP_SERVICE_SHADOWS", () => {
  it("reads a list of candidates, each with its own percent and in-flight bound, defaults from the old settings", () => {
    expect(
      read({
        SHADOWS:
          " spam-v2=127.0.0.1:50052 , spam-lite=[::1]:50054;percent=12.5;inflight=3,x.y_z=model-x:1;inflight=0",
        MIRROR_PERCENT: 40,
        MAX_MIRRORS_IN_FLIGHT: 8,
      }),
    ).toEqual([
      { name: "spam-v2", modelName: "spam-v2", address: "127.0.0.1:50052", percent: 40, maxInFlight: 8 },
      { name: "spam-lite", modelName: "spam-lite", address: "[::1]:50054", percent: 12.5, maxInFlight: 3 },
      { name: "x.y_z", modelName: "x.y_z", address: "model-x:1", percent: 40, maxInFlight: 0 },
    ]);
  });

  it("keeps SHADOW_ADDRESS + MIRROR_PERCENT + MAX_MIRRORS_IN_FLIGHT working as a list of one", () => {
    expect(read({ SHADOW_ADDRESS: "127.0.0.1:50052", MIRROR_PERCENT: 30, MAX_MIRRORS_IN_FLIGHT: 2 })).toEqual(
      [{ name: "127.0.0.1:50052", modelName: "", address: "127.0.0.1:50052", percent: 30, maxInFlight: 2 }],
    );
    expect(read({ SHADOW_ADDRESS: "127.0.0.1:50052", SHADOW_NAME: "spam-v2" })[0]).toMatchObject({
      name: "spam-v2",
      modelName: "spam-v2",
    });
    expect(read({})).toEqual([]);
  });

  it("refuses bad entries with one line naming the entry", () => {
    const cases: [string, RegExp][] = [
      ["spam-v2", /entry "spam-v2" is not NAME=HOST:PORT/],
      ["spam-v2=127.0.0.1:50052,", /entry "" is not NAME=HOST:PORT/],
      ["=127.0.0.1:50052", /entry "=127.0.0.1:50052": "" is not a model name/],
      ["spam v2=127.0.0.1:50052", /"spam v2" is not a model name/],
      ["spam-v2=http://127.0.0.1:50052", /"http:\/\/127.0.0.1:50052" is not host:port/],
      ["spam-v2=127.0.0.1", /"127.0.0.1" is not host:port/],
      ["spam-v2=127.0.0.1:50052;percent=101", /percent must be between 0 and 100, got "101"/],
      ["spam-v2=127.0.0.1:50052;percent=", /percent must be between 0 and 100, got ""/],
      ["spam-v2=127.0.0.1:50052;percent=ten", /percent must be between 0 and 100, got "ten"/],
      ["spam-v2=127.0.0.1:50052;inflight=1.5", /inflight must be a non-negative integer, got "1.5"/],
      ["spam-v2=127.0.0.1:50052;inflight=-1", /inflight must be a non-negative integer/],
      ["spam-v2=127.0.0.1:50052;percent=5;percent=6", /percent is given twice/],
      ["spam-v2=127.0.0.1:50052;weight=5", /unknown option "weight=5" \(percent=P, inflight=N\)/],
      ["spam-v2=127.0.0.1:50052;percent=5=6", /percent must be between 0 and 100/],
    ];
    for (const [value, why] of cases) {
      const message = refusal(() => read({ SHADOWS: value }));
      expect(message, value).toMatch(/^invalid configuration: APP_SERVICE_SHADOWS: /);
      expect(message, value).toMatch(why);
      expect(message.split("\n"), value).toHaveLength(1);
    }
  });

  it("refuses a name or an address given twice, and a shadow that is the primary", () => {
    expect(refusal(() => read({ SHADOWS: "a=h1:1,b=h2:2,a=h3:3" }))).toMatch(/the name "a" is given twice/);
    expect(refusal(() => read({ SHADOWS: "a=h1:1,b=h1:1" }))).toMatch(/the address h1:1 is given twice/);
    expect(refusal(() => read({ SHADOWS: "a=h1:1,b=127.0.0.1:50051" }))).toMatch(
      /"b" must differ from APP_SERVICE_MODEL_SERVICE_ADDRESS/,
    );
  });

  it("refuses SHADOWS together with SHADOW_ADDRESS, and SHADOW_NAME without SHADOW_ADDRESS", () => {
    expect(refusal(() => read({ SHADOWS: "a=h1:1", SHADOW_ADDRESS: "h2:2" }))).toMatch(
      /SHADOWS and APP_SERVICE_SHADOW_ADDRESS are both set/,
    );
    expect(refusal(() => read({ SHADOW_NAME: "spam-v2" }))).toMatch(/SHADOW_NAME names the shadow at/);
    expect(refusal(() => read({ SHADOWS: "a=h1:1", SHADOW_NAME: "spam-v2" }))).toMatch(
      /every entry is NAME=HOST:PORT/,
    );
    expect(refusal(() => read({ SHADOW_ADDRESS: "h2:2", SHADOW_NAME: "no spaces please" }))).toMatch(
      /SHADOW_NAME: "no spaces please" is not a model name/,
    );
  });

  it("is read by readConfig; the fault settings count any shadow as local mirroring", () => {
    const config = readConfig({
      APP_SERVICE_SHADOWS: "spam-v2=127.0.0.1:50052;percent=50,spam-lite=127.0.0.1:50054",
      APP_SERVICE_SHADOW_FAULT_ABORT_CODE: "UNAVAILABLE",
      APP_SERVICE_SHADOW_FAULT_ABORT_PERCENT: "10",
    });
    expect(config.SHADOWS.map((shadow) => [shadow.name, shadow.percent])).toEqual([
      ["spam-v2", 50],
      ["spam-lite", 100],
    ]);
    expect(describeShadows(config.SHADOWS)).toBe(
      "50% to spam-v2 at 127.0.0.1:50052 (≤ 64 in flight), 100% to spam-lite at 127.0.0.1:50054 (≤ 64 in flight)",
    );
    expect(() => readConfig({ APP_SERVICE_SHADOWS: "spam-v2=127.0.0.1:50051" })).toThrow(
      /must differ from APP_SERVICE_MODEL_SERVICE_ADDRESS/,
    );
  });
});
