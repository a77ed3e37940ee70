import { describe, expect, it } from "vitest";
import { parseManifest } from "./manifest.js";

const valid = {
  name: "spam-v1",
  version: "1.0.0",
  sha256: "A".repeat(64),
  labels: ["ham", "spam"],
  maxTextChars: 20000,
  decisionThreshold: 0.5,
  opset: 17,
  inputName: "text",
  outputs: { label: "label", probabilities: "probabilities" },
  metrics: { f1: 0.9, test: { accuracy: 0.95, note: "not a number" } },
  provenance: { commit: "abc" },
  somethingNew: true,
};

describe("parseManifest", () => {
  it("reads the fields it needs, tolerates extra ones and flattens numeric metrics", () => {
    const manifest = parseManifest(valid);
    expect(manifest).toMatchObject({
      name: "spam-v1",
      sha256: "a".repeat(64),
      labels: ["ham", "spam"],
      maxTextChars: 20000,
      inputName: "text",
      outputs: { label: "label", probabilities: "probabilities" },
    });
    expect(manifest.metrics).toEqual({ f1: 0.9, "test.accuracy": 0.95 });
  });

  it("defaults the input and output names when the manifest leaves them out", () => {
    const { inputName: _input, outputs: _outputs, ...rest } = valid;
    const manifest = parseManifest(rest);
    expect(manifest.inputName).toBe("text");
    expect(manifest.outputs).toEqual({ label: "label", probabilities: "probabilities" });
  });

  it.each([
    [{ sha256: "xyz" }, /sha256/],
    [{ labels: ["spam"] }, /labels/],
    [{ labels: ["a", "a"] }, /labels/],
    [{ maxTextChars: 0 }, /maxTextChars/],
    [{ decisionThreshold: 2 }, /decisionThreshold/],
    [{ name: "" }, /name/],
    [{ outputs: { label: 3 } }, /outputs/],
  ])("rejects a bad field (%o) naming it", (patch, message) => {
    expect(() => parseManifest({ ...valid, ...patch })).toThrow(message);
  });

  it("rejects something that is not an object", () => {
    expect(() => parseManifest([1, 2])).toThrow(/not a JSON object/);
  });
});
