import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "./child-process.js";
import { BASELINE_MODEL } from "./constants.js";
import type { GateResult } from "./gates.js";
import type { ModelManifest } from "./manifest.js";
import { MODEL_SPECS } from "./model-specs.js";
import { runPipeline } from "./pipeline.js";
import { sha256Hex } from "./rng.js";
import type { Disagreement } from "./stages/compare.js";

// The full retrain: every stage from the raw corpus, with an empty cache, into a scratch models directory.
// Measured on the 2-core development machine: 74 s when the machine was otherwise idle, 191 s while the rest of the
// test suite and other services' benchmarks were running (two models; spam-lite adds a small fraction). That is under
// the 5 minutes the issue sets for running it in `npm test`, which is also this test's limit.
describe("the full pipeline", () => {
  const scratch = mkdtempSync(join(tmpdir(), "shadowmesh-retrain-"));
  const cacheDir = join(scratch, "cache");
  const modelsDir = join(scratch, "models");
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, "utf8")) as T;
  // The first run keeps going when its test times out; the cached run must not start on the same cache beside it.
  let firstRun: Promise<unknown> = Promise.resolve();

  it("retrains every model from scratch, passes every blocking gate, and reproduces the bundled model.onnx files byte for byte", async () => {
    const started = performance.now();
    const lines: string[] = [];
    const run = runPipeline({ cacheDir, modelsDir, log: (line) => lines.push(line) });
    firstRun = run;
    const result = await run;
    const seconds = (performance.now() - started) / 1000;
    console.log(`full retrain took ${seconds.toFixed(1)} s`);
    expect(result.gates.filter((g) => !g.passed && g.blocking)).toEqual([]);
    expect(result.passed).toBe(true);
    for (const { name } of MODEL_SPECS) {
      const bundled = readJson<ModelManifest>(join(REPO_ROOT, "models", name, "model.json"));
      const retrained = readFileSync(join(modelsDir, name, "model.onnx"));
      expect(sha256Hex(retrained), `${name} model.onnx`).toBe(bundled.sha256);
      expect(result.models[name]?.published, name).toBe(true);
    }
    expect(lines.some((l) => l.includes("ETA"))).toBe(true);
  }, 300_000);

  it("records every model's gates in its report, a candidate's misses included, and publishes the candidate anyway", () => {
    for (const { name } of MODEL_SPECS) {
      const report = readJson<{ gates: GateResult[] }>(join(modelsDir, name, "report.json"));
      const md = readFileSync(join(modelsDir, name, "report.md"), "utf8");
      expect(report.gates.length, name).toBeGreaterThanOrEqual(3);
      expect(report.gates.every((g) => g.model === name)).toBe(true);
      for (const g of report.gates) {
        expect(md, `${name}: ${g.gate}`).toContain(
          `| ${g.gate} | ${g.passed ? "pass" : g.blocking ? "**FAIL**" : "**MISSED** (recorded)"} |`,
        );
      }
    }
    const lite = readJson<{ gates: GateResult[] }>(join(modelsDir, "spam-lite", "report.json"));
    // spam-lite's quality gates are recorded, never enforced, and all of them were evaluated (none skipped).
    expect(lite.gates.filter((g) => !g.blocking).map((g) => g.gate)).toEqual([
      "spam-lite test F1 within 0.01 of spam-v1",
      "spam-lite hard-ham FPR",
      "spam-lite size <= 10 % of spam-v1",
    ]);
  });

  it("compares every candidate with the baseline and writes each comparison into both reports", () => {
    const reportOf = (name: string) =>
      readJson<{ disagreements: Disagreement[] }>(join(modelsDir, name, "report.json"));
    const candidates = MODEL_SPECS.map((s) => s.name).filter((n) => n !== BASELINE_MODEL);
    expect(reportOf(BASELINE_MODEL).disagreements.map((d) => d.candidate)).toEqual(candidates);
    for (const candidate of candidates) {
      const [d] = reportOf(candidate).disagreements;
      expect(d).toMatchObject({ baseline: BASELINE_MODEL, candidate, examples: 1183 });
      expect(reportOf(BASELINE_MODEL).disagreements).toContainEqual(d);
      expect((d?.baselineHamCandidateSpam ?? 0) + (d?.baselineSpamCandidateHam ?? 0)).toBe(d?.disagreements);
      expect(readFileSync(join(modelsDir, candidate, "report.md"), "utf8")).toContain(
        `## Disagreement with ${BASELINE_MODEL}`,
      );
    }
  });

  it("re-runs nothing but publishing when no input changed", async () => {
    await firstRun.catch(() => {});
    const lines: string[] = [];
    // Every stage read back from the cache is the proof; how long that takes belongs to the pipeline's own timing
    // output, not to an assertion that flakes on a busy 2-core machine.
    const result = await runPipeline({ cacheDir, modelsDir, log: (line) => lines.push(line) });
    expect(result.passed).toBe(true);
    for (const stage of [
      "parse",
      "split",
      ...MODEL_SPECS.map((s) => `train:${s.name}`),
      ...MODEL_SPECS.map((s) => `evaluate:${s.name}`),
    ]) {
      expect(
        lines.some((l) => l.includes(`] ${stage}:`) && l.includes("(cached)")),
        stage,
      ).toBe(true);
    }
  }, 120_000);
});
