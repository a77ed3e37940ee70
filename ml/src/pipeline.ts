import { join } from "node:path";
import { StageCache } from "./cache.js";
import { REPO_ROOT } from "./child-process.js";
import { BASELINE_MODEL, MAX_TEXT_CHARS, SPLIT_CONFIG } from "./constants.js";
import { corpusFingerprint, DATA_PACKAGE, dataPackageVersion, loadRawCorpus } from "./corpus.js";
import { buildDataset, type DedupeStats, splitCounts } from "./dataset.js";
import { evaluateModel } from "./evaluate.js";
import { MODEL_SPECS, type ModelSpec, modelSpec } from "./model-specs.js";
import { fmtSeconds, StageRunner } from "./stage-runner.js";
import { addDisagreementsToReport, compareWithBaseline, type Disagreement } from "./stages/compare.js";
import { parseCorpus } from "./stages/parse.js";
import { type BuiltModel, type Published, publishModels } from "./stages/publish.js";
import { PRODUCER_VERSION, trainedOnnxPath, trainTwice } from "./stages/train.js";

export interface PipelineOptions {
  /** Models to build; the others keep their bundled artifacts. Default: all. */
  models?: readonly string[];
  cacheDir?: string;
  modelsDir?: string;
  /** Ignore all cached stage outputs. */
  force?: boolean;
  /** Ignore the cached outputs of these stage kinds only ("parse", "split", "train", "evaluate"). */
  rerun?: readonly string[];
  log?: (line: string) => void;
}

export interface PipelineResult extends Published {
  dedupe: DedupeStats;
  splitCounts: ReturnType<typeof splitCounts>;
  /** Every candidate against the baseline (spam-v1), fresh models where built, bundled ones otherwise. */
  disagreements: Disagreement[];
  seconds: number;
}

/** The stages, in order: what `[i/n]` counts and what the pipeline ETA sums. */
function stageNames(selected: readonly ModelSpec[]): string[] {
  return [
    "load",
    "parse",
    "split",
    ...selected.map((s) => `train:${s.name}`),
    ...selected.map((s) => `evaluate:${s.name}`),
    "publish",
    "compare",
  ];
}

/**
 * The whole pipeline: load → parse → split → train (twice per model, in parallel, for the repeatability gate) →
 * evaluate → publish → compare. Stages whose inputs (data, code, configuration) are unchanged are read from the
 * content-hash cache under ml/.cache (stage-runner.ts).
 */
export async function runPipeline(options: PipelineOptions = {}): Promise<PipelineResult> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => console.log(line));
  const cache = new StageCache(options.cacheDir ?? join(REPO_ROOT, "ml/.cache"));
  const modelsDir = options.modelsDir ?? join(REPO_ROOT, "models");
  const selected = (options.models ?? MODEL_SPECS.map((s) => s.name)).map((n) => modelSpec(n));
  const runner = new StageRunner(cache, stageNames(selected), {
    log,
    force: options.force,
    rerun: options.rerun,
  });

  // 1. load
  const raw = await runner.run("load", `${DATA_PACKAGE}@${dataPackageVersion()}`, async () =>
    loadRawCorpus(),
  );

  // 2. parse
  const parsed = await runner.cached({
    name: "parse",
    kind: "parse",
    detail: `${raw.length} messages with mailparser`,
    inputs: [corpusFingerprint(raw)],
    sources: ["stages/parse.ts"],
    config: [MAX_TEXT_CHARS],
    run: (progress) => parseCorpus(raw, progress),
  });

  // 3. split
  const split = await runner.cached({
    name: "split",
    kind: "split",
    detail: "dedupe and hash split",
    inputs: [parsed.key],
    sources: ["dataset.ts"],
    config: [SPLIT_CONFIG],
    run: async () => buildDataset(parsed.value, SPLIT_CONFIG),
  });
  const { examples, stats } = split.value;
  const counts = splitCounts(examples);
  log(
    `    ${stats.messages} messages, ${stats.duplicatesRemoved} duplicate copies removed (${stats.duplicateGroups} sets, ${stats.groupsThatWouldStraddle} would have straddled splits), ` +
      `train ${counts.train.total} / validation ${counts.validation.total} / test ${counts.test.total}`,
  );
  const datasetFile = join(split.dir, "output.json");

  // 4. train (each model twice, side by side, for the repeatability gate)
  const trained: BuiltModel[] = [];
  for (const spec of selected) {
    const out = await runner.cached({
      name: `train:${spec.name}`,
      kind: "train",
      cacheName: `train-${spec.name}`,
      detail: `${(counts.train.total ?? 0) + (counts.validation.total ?? 0)} train + validation texts, twice in parallel`,
      inputs: [split.key],
      sources: ["stages/train.ts"],
      config: [spec, MAX_TEXT_CHARS, PRODUCER_VERSION],
      run: (progress, dir) => trainTwice(spec, datasetFile, dir, progress),
    });
    trained.push({ spec, summary: out.value, onnxPath: trainedOnnxPath(out.dir), key: out.key });
  }

  // 5. evaluate
  for (const t of trained) {
    const out = await runner.cached({
      name: `evaluate:${t.spec.name}`,
      kind: "evaluate",
      cacheName: `evaluate-${t.spec.name}`,
      detail: `onnxruntime on ${counts.test.total} test texts, parity, latency`,
      inputs: [t.key],
      sources: ["evaluate.ts"],
      run: () =>
        evaluateModel({
          onnxPath: t.onnxPath,
          examples,
          decisionThreshold: t.summary.threshold.threshold,
          trainerScores: t.summary.trainerScores,
        }),
    });
    t.evaluation = out.value;
  }

  // 6. gates and publish
  const result: PipelineResult = {
    dedupe: stats,
    splitCounts: counts,
    models: {},
    gates: [],
    disagreements: [],
    passed: false,
    seconds: 0,
  };
  const rejectedDir = join(cache.root, "rejected");
  await runner.run("publish", `gates, then ${modelsDir}`, async () => {
    const published = publishModels({ built: trained, examples, stats, counts, modelsDir, rejectedDir, log });
    Object.assign(result, published);
  });

  // 7. compare: how differently each candidate labels the test split than the baseline (fresh models where built,
  // the bundled ones otherwise).
  const candidates = MODEL_SPECS.map((s) => s.name).filter((n) => n !== BASELINE_MODEL);
  await runner.run("compare", `${candidates.join(", ")} vs ${BASELINE_MODEL} on the test split`, async () => {
    result.disagreements = await compareWithBaseline({
      baseline: BASELINE_MODEL,
      candidates,
      texts: examples.filter((e) => e.split === "test").map((e) => e.text),
      onnxOf: (name) =>
        trained.find((t) => t.spec.name === name)?.onnxPath ?? join(modelsDir, name, "model.onnx"),
      log,
    });
    for (const name of Object.keys(result.models)) {
      addDisagreementsToReport(
        join(result.passed ? modelsDir : rejectedDir, name),
        name,
        result.disagreements.filter((d) => d.baseline === name || d.candidate === name),
      );
    }
  });

  logSummary(log, selected, result);
  result.seconds = (performance.now() - started) / 1000;
  runner.saveTimings();
  log(`\nPipeline ${result.passed ? "passed" : "FAILED"} in ${fmtSeconds(result.seconds)}.`);
  return result;
}

/** The final table of models and gates. */
function logSummary(
  log: (line: string) => void,
  selected: readonly ModelSpec[],
  result: PipelineResult,
): void {
  log("\nModels (test split):");
  log(
    "  model      version  F1      precision  recall  ROC-AUC  hard-ham FPR  threshold  p50 / p99 ms (1 text)  p50 ms (32)  size",
  );
  for (const spec of selected) {
    const m = result.models[spec.name];
    if (m === undefined) continue;
    const e = m.evaluation;
    log(
      `  ${spec.name.padEnd(9)}  ${spec.version}    ${e.test.f1.toFixed(4)}  ${e.test.precision.toFixed(4)}     ${e.test.recall.toFixed(4)}  ` +
        `${e.test.rocAuc.toFixed(4)}   ${(100 * e.slices.hardHam.falsePositiveRate).toFixed(2).padStart(5)} %       ` +
        `${m.manifest.decisionThreshold.toFixed(2)}       ${e.latency.single.p50Ms.toFixed(2)} / ${e.latency.single.p99Ms.toFixed(2)}            ` +
        `${e.latency.batch32.p50Ms.toFixed(1).padStart(5)}        ${(m.manifest.sizeBytes / 1024 / 1024).toFixed(2)} MiB`,
    );
  }
  log("  (full reports: models/<name>/report.md and report.json)");
  log("\nQuality gates:");
  for (const g of result.gates) {
    log(
      `  ${g.passed ? "PASS" : g.blocking ? "FAIL" : "MISS (recorded, not blocking)"}  ${g.gate}: ${g.detail}`,
    );
  }
}
