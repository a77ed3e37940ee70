import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { StageCache, sourceHash, stageKey, writeAtomic } from "./cache.js";
import { REPO_ROOT, runTsChild } from "./child-process.js";
import { corpusFingerprint, DATA_PACKAGE, dataPackageVersion, loadRawCorpus } from "./corpus.js";
import { buildDataset, type DedupeStats, type Example, type ParsedRecord, splitCounts } from "./dataset.js";
import { type Evaluation, evaluateModel } from "./evaluate.js";
import { buildManifest, type ModelManifest } from "./manifest.js";
import type { ThresholdChoice } from "./metrics.js";
import { MAX_TEXT_CHARS, MODEL_SPECS, type ModelSpec, modelSpec, SEED } from "./model-specs.js";
import { createSession, predictWithOnnx } from "./onnx-inference.js";
import { modelText, parseMessage } from "./parse-message.js";
import { renderReportMarkdown } from "./report.js";
import { sha256Hex } from "./rng.js";
import type { EpochLog } from "./train.js";

export const SPLIT_CONFIG = { seed: SEED, trainFraction: 0.6, validationFraction: 0.2 } as const;
export const MAX_MODEL_BYTES = 5 * 1024 * 1024;
export const GATES = { v2MinTestF1: 0.98, v2MaxHardHamFpr: 0.06 } as const;

/** The package version, recorded as the ONNX producer version. */
const PRODUCER_VERSION = (
  JSON.parse(readFileSync(join(REPO_ROOT, "ml/package.json"), "utf8")) as { version: string }
).version;

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

/** What a training stage stores (the ONNX bytes live next to it as model.onnx). */
export interface TrainedSummary {
  name: string;
  version: string;
  featureDim: number;
  hidden: number;
  history: EpochLog[];
  threshold: ThresholdChoice;
  trainerScores: { outOfFold: number[]; test: number[] };
  timings: {
    fitSeconds: number;
    vectorizeSeconds: number;
    trainSeconds: number;
    crossValidationSeconds: number;
    exportSeconds: number;
  };
  onnxBytes: number;
  onnxSha256: string;
  trainingPeakRssBytes: number;
  repeatability: { runs: number; identical: boolean; sha256s: string[] };
  gitCommit: string;
  gitDirty: boolean;
  wallSeconds: number;
}

/** How differently spam-v1 and spam-v2 label the test split (what the shadow comparison will see). */
export interface Disagreement {
  examples: number;
  disagreements: number;
  rate: number;
  spamV1HamSpamV2Spam: number;
  spamV1SpamSpamV2Ham: number;
  meanAbsSpamProbabilityDifference: number;
  spamProbabilityDifferenceAbove0_1: number;
}

export interface GateResult {
  gate: string;
  passed: boolean;
  detail: string;
}

export interface PipelineResult {
  dedupe: DedupeStats;
  splitCounts: ReturnType<typeof splitCounts>;
  models: Record<string, { manifest: ModelManifest; evaluation: Evaluation; published: boolean }>;
  gates: GateResult[];
  disagreement?: Disagreement;
  passed: boolean;
  seconds: number;
}

interface Timings {
  [stage: string]: number;
}

function gitInfo(): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync("git", ["rev-parse", "HEAD"], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "ignore"],
    })
      .toString()
      .trim();
    const status = execFileSync("git", ["status", "--porcelain", "--", "ml/src", "ml/package.json"], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "ignore"],
    }).toString();
    return { commit, dirty: status.trim() !== "" };
  } catch {
    return { commit: "unknown", dirty: true };
  }
}

const fmtSeconds = (s: number) =>
  s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;

/**
 * The whole pipeline: load → parse → split → train (twice per model, in parallel, for the repeatability gate) →
 * evaluate → publish → compare. Stages whose inputs (data, code, configuration) are unchanged are read from the
 * content-hash cache under ml/.cache.
 */
export async function runPipeline(options: PipelineOptions = {}): Promise<PipelineResult> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => console.log(line));
  const cache = new StageCache(options.cacheDir ?? join(REPO_ROOT, "ml/.cache"));
  const modelsDir = options.modelsDir ?? join(REPO_ROOT, "models");
  const selected = (options.models ?? MODEL_SPECS.map((s) => s.name)).map((n) => modelSpec(n));
  const timingsFile = join(cache.root, "timings.json");
  const lastTimings: Timings = existsSync(timingsFile) ? JSON.parse(readFileSync(timingsFile, "utf8")) : {};
  const timings: Timings = {};
  const stageNames = [
    "load",
    "parse",
    "split",
    ...selected.map((s) => `train:${s.name}`),
    ...selected.map((s) => `evaluate:${s.name}`),
    "publish",
    "compare",
  ];
  let stageIndex = 0;
  const remainingEstimate = (fromIndex: number) =>
    stageNames.slice(fromIndex).reduce((sum, name) => sum + (lastTimings[name] ?? 0), 0);
  const stage = async <T>(
    name: string,
    detail: string,
    body: (progress: (m: string, f: number) => void) => Promise<T>,
  ) => {
    stageIndex += 1;
    const t0 = performance.now();
    const eta = remainingEstimate(stageIndex - 1);
    log(
      `[${stageIndex}/${stageNames.length}] ${name}: ${detail}${eta > 0 ? ` (pipeline ETA ${fmtSeconds(eta)}, from the last run)` : ""}`,
    );
    let lastPrint = 0;
    const progress = (message: string, fraction: number) => {
      const elapsed = (performance.now() - t0) / 1000;
      if (performance.now() - lastPrint < 1000 && fraction < 1) return;
      lastPrint = performance.now();
      const etaStage = fraction > 0.02 ? (elapsed / fraction) * (1 - fraction) : Number.NaN;
      log(
        `    ${name}: ${message}${Number.isFinite(etaStage) && fraction < 1 ? ` — ETA ${fmtSeconds(etaStage)}` : ""}`,
      );
    };
    const result = await body(progress);
    const seconds = (performance.now() - t0) / 1000;
    timings[name] = seconds;
    log(`    ${name}: done in ${fmtSeconds(seconds)}`);
    return result;
  };
  const cached = (name: string, hit: boolean) => (hit ? `${name} (cached)` : name);
  const useCache = (kind: string) => !options.force && !(options.rerun ?? []).includes(kind);

  // 1. load
  const raw = await stage("load", `${DATA_PACKAGE}@${dataPackageVersion()}`, async () => loadRawCorpus());
  const fingerprint = corpusFingerprint(raw);

  // 2. parse
  const parseKey = stageKey("parse", [
    fingerprint,
    sourceHash(["corpus.ts", "parse-message.ts", "rng.ts"]),
    MAX_TEXT_CHARS,
  ]);
  let parsed = !useCache("parse") ? undefined : cache.readJson<ParsedRecord[]>("parse", parseKey);
  parsed = await stage(
    "parse",
    cached(`${raw.length} messages with mailparser`, parsed !== undefined),
    async (progress) => {
      if (parsed !== undefined) return parsed;
      const out: ParsedRecord[] = [];
      for (const [i, m] of raw.entries()) {
        const p = await parseMessage(m.text);
        out.push({
          id: m.id,
          group: m.group,
          checksum: m.checksum.value,
          text: modelText(p, MAX_TEXT_CHARS),
          hasHtml: p.hasHtml,
        });
        if (i % 250 === 0) progress(`${i}/${raw.length} messages`, i / raw.length);
      }
      cache.writeJson("parse", parseKey, out);
      return out;
    },
  );

  // 3. split
  const splitKey = stageKey("split", [parseKey, sourceHash(["dataset.ts", "rng.ts"]), SPLIT_CONFIG]);
  type SplitOutput = { examples: Example[]; stats: DedupeStats };
  let split = !useCache("split") ? undefined : cache.readJson<SplitOutput>("split", splitKey);
  split = await stage("split", cached("dedupe and hash split", split !== undefined), async () => {
    if (split !== undefined) return split;
    const built = buildDataset(parsed, SPLIT_CONFIG);
    cache.writeJson("split", splitKey, built);
    return built;
  });
  const { examples, stats } = split;
  const counts = splitCounts(examples);
  log(
    `    ${stats.messages} messages, ${stats.duplicatesRemoved} duplicate copies removed (${stats.duplicateGroups} sets, ${stats.groupsThatWouldStraddle} would have straddled splits), ` +
      `train ${counts.train.total} / validation ${counts.validation.total} / test ${counts.test.total}`,
  );
  const datasetFile = join(cache.dir("split", splitKey), "output.json");

  // 4. train (each model twice, side by side, for the repeatability gate)
  const trainSources = sourceHash([
    "classifier.ts",
    "features.ts",
    "text-ops.ts",
    "train.ts",
    "train-model.ts",
    "train-child.ts",
    "metrics.ts",
    "onnx-export.ts",
    "rng.ts",
    "model-specs.ts",
  ]);
  const trained: Record<string, { summary: TrainedSummary; onnxPath: string; key: string }> = {};
  for (const spec of selected) {
    const key = stageKey("train", [splitKey, trainSources, spec, MAX_TEXT_CHARS, PRODUCER_VERSION]);
    const dir = cache.dir(`train-${spec.name}`, key);
    let summary = !useCache("train") ? undefined : cache.readJson<TrainedSummary>(`train-${spec.name}`, key);
    summary = await stage(
      `train:${spec.name}`,
      cached(
        `${(counts.train.total ?? 0) + (counts.validation.total ?? 0)} train + validation texts, twice in parallel`,
        summary !== undefined,
      ),
      async (progress) => {
        if (summary !== undefined) return summary;
        return trainTwice(spec, datasetFile, dir, progress);
      },
    );
    if (!existsSync(join(dir, "output.json"))) cache.writeJson(`train-${spec.name}`, key, summary);
    trained[spec.name] = { summary, onnxPath: join(dir, "run-1", "model.onnx"), key };
  }

  // 5. evaluate
  const evalSources = sourceHash(["evaluate.ts", "metrics.ts", "onnx-inference.ts", "bench-child.ts"]);
  const evaluations: Record<string, Evaluation> = {};
  for (const spec of selected) {
    const t = trained[spec.name];
    if (t === undefined) continue;
    const key = stageKey("evaluate", [t.key, evalSources]);
    let evaluation = !useCache("evaluate")
      ? undefined
      : cache.readJson<Evaluation>(`evaluate-${spec.name}`, key);
    evaluation = await stage(
      `evaluate:${spec.name}`,
      cached(`onnxruntime on ${counts.test.total} test texts, parity, latency`, evaluation !== undefined),
      async () => {
        if (evaluation !== undefined) return evaluation;
        const result = await evaluateModel({
          onnxPath: t.onnxPath,
          examples,
          decisionThreshold: t.summary.threshold.threshold,
          trainerScores: t.summary.trainerScores,
        });
        cache.writeJson(`evaluate-${spec.name}`, key, result);
        return result;
      },
    );
    evaluations[spec.name] = evaluation;
  }

  // 6. gates and publish
  const gates: GateResult[] = [];
  const result: PipelineResult = {
    dedupe: stats,
    splitCounts: counts,
    models: {},
    gates,
    passed: false,
    seconds: 0,
  };
  await stage("publish", `gates, then ${modelsDir}`, async () => {
    const manifests: Record<string, ModelManifest> = {};
    for (const spec of selected) {
      const t = trained[spec.name];
      const evaluation = evaluations[spec.name];
      if (t === undefined || evaluation === undefined) continue;
      const onnx = readFileSync(t.onnxPath);
      manifests[spec.name] = buildManifest({
        spec,
        onnx,
        summary: t.summary,
        evaluation,
        dataPackageVersion: dataPackageVersion(),
        splitConfig: SPLIT_CONFIG,
        counts,
        dedupe: stats,
      });
      gates.push(
        {
          gate: `${spec.name} parity`,
          passed: evaluation.parity.passed,
          detail: `max |onnx - trainer| ${evaluation.parity.maxAbsDifference.toExponential(2)} over ${evaluation.parity.examples} test texts (tolerance ${evaluation.parity.tolerance}), ${evaluation.parity.labelMismatches} label mismatches`,
        },
        {
          gate: `${spec.name} repeatability`,
          passed: t.summary.repeatability.identical,
          detail: `${t.summary.repeatability.runs} trainings, sha256 ${[...new Set(t.summary.repeatability.sha256s)].map((s) => s.slice(0, 12)).join(" vs ")}`,
        },
        {
          gate: `${spec.name} size`,
          passed: onnx.length <= MAX_MODEL_BYTES,
          detail: `${onnx.length} bytes (limit ${MAX_MODEL_BYTES})`,
        },
      );
    }
    // Cross-model gates use the freshly built model where there is one, the bundled manifest otherwise.
    const manifestOf = (name: string): ModelManifest | undefined => {
      const fresh = manifests[name];
      if (fresh) return fresh;
      const file = join(modelsDir, name, "model.json");
      return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as ModelManifest) : undefined;
    };
    const v1 = manifestOf("spam-v1");
    const v2 = manifestOf("spam-v2");
    if (v2) {
      gates.push(
        {
          gate: "spam-v2 test F1",
          passed: v2.metrics.f1 >= GATES.v2MinTestF1,
          detail: `${v2.metrics.f1.toFixed(4)} (need >= ${GATES.v2MinTestF1})`,
        },
        {
          gate: "spam-v2 hard-ham FPR",
          passed: v2.metrics.hardHamFalsePositiveRate <= GATES.v2MaxHardHamFpr,
          detail: `${(100 * v2.metrics.hardHamFalsePositiveRate).toFixed(2)} % (need <= ${100 * GATES.v2MaxHardHamFpr} %, threshold ${v2.decisionThreshold} chosen without the test split)`,
        },
      );
    }
    if (v1 && v2) {
      gates.push({
        gate: "spam-v2 beats spam-v1 on test F1",
        passed: v2.metrics.f1 > v1.metrics.f1,
        detail: `${v2.metrics.f1.toFixed(4)} vs ${v1.metrics.f1.toFixed(4)}`,
      });
    }
    const passed = gates.every((g) => g.passed);
    for (const spec of selected) {
      const t = trained[spec.name];
      const evaluation = evaluations[spec.name];
      const manifest = manifests[spec.name];
      if (t === undefined || evaluation === undefined || manifest === undefined) continue;
      // A model that fails a gate never replaces the bundled one; its candidate goes to ml/.cache/rejected.
      const outDir = passed ? join(modelsDir, spec.name) : join(cache.root, "rejected", spec.name);
      mkdirSync(outDir, { recursive: true });
      writeAtomic(join(outDir, "model.onnx"), readFileSync(t.onnxPath));
      writeAtomic(join(outDir, "model.json"), `${JSON.stringify(manifest, null, 2)}\n`);
      const { testLabels: _labels, ...reportEvaluation } = evaluation;
      const report = {
        name: spec.name,
        version: spec.version,
        description: spec.description,
        thresholdChoice: t.summary.threshold,
        ...reportEvaluation,
        sizeBytes: manifest.sizeBytes,
        featureDim: t.summary.featureDim,
        trainingHistory: t.summary.history,
        trainingSeconds: t.summary.timings,
        repeatability: t.summary.repeatability,
        dataset: { dedupe: stats, splitCounts: counts, splitConfig: SPLIT_CONFIG },
      };
      writeAtomic(join(outDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
      // The trainer's in-memory P(spam) on the test split: lets `npm test` check parity without retraining.
      const testExamples = examples.filter((e) => e.split === "test");
      writeAtomic(
        join(outDir, "trainer-predictions.json"),
        `${JSON.stringify({
          split: "test",
          threshold: manifest.decisionThreshold,
          examples: testExamples.map((e, i) => ({
            group: e.group,
            id: e.id,
            checksum: e.checksum,
            spamProbability: t.summary.trainerScores.test[i],
          })),
        })}\n`,
      );
      writeAtomic(join(outDir, "report.md"), renderReportMarkdown(manifest, report, t.summary));
      result.models[spec.name] = { manifest, evaluation, published: passed };
      log(`    ${spec.name}: ${passed ? "published to" : "REJECTED, candidate written to"} ${outDir}`);
    }
    result.passed = passed;
  });

  // 7. compare: how differently the two models (fresh candidates, else the bundled ones) label the test split.
  await stage("compare", "spam-v1 vs spam-v2 on the test split", async () => {
    const test = examples.filter((e) => e.split === "test");
    const predictionsOf = async (name: string) => {
      const file = trained[name]?.onnxPath ?? join(modelsDir, name, "model.onnx");
      if (!existsSync(file)) return undefined;
      const session = await createSession(file);
      const out = await predictWithOnnx(
        session,
        test.map((e) => e.text),
      );
      await session.release();
      return out;
    };
    const a = await predictionsOf("spam-v1");
    const b = await predictionsOf("spam-v2");
    if (a === undefined || b === undefined) return;
    let disagreements = 0;
    let v1HamV2Spam = 0;
    let deltaSum = 0;
    let bigDeltas = 0;
    test.forEach((_, i) => {
      if (a.labels[i] !== b.labels[i]) {
        disagreements += 1;
        if (a.labels[i] === "ham") v1HamV2Spam += 1;
      }
      const delta = Math.abs((a.spamProbability[i] ?? 0) - (b.spamProbability[i] ?? 0));
      deltaSum += delta;
      if (delta > 0.1) bigDeltas += 1;
    });
    const disagreement: Disagreement = {
      examples: test.length,
      disagreements,
      rate: disagreements / test.length,
      spamV1HamSpamV2Spam: v1HamV2Spam,
      spamV1SpamSpamV2Ham: disagreements - v1HamV2Spam,
      meanAbsSpamProbabilityDifference: deltaSum / test.length,
      spamProbabilityDifferenceAbove0_1: bigDeltas,
    };
    result.disagreement = disagreement;
    const summary =
      `${disagreements} of ${test.length} test texts (${(100 * disagreement.rate).toFixed(2)} %) get a different label ` +
      `(${v1HamV2Spam} ham by spam-v1 but spam by spam-v2, ${disagreements - v1HamV2Spam} the other way); ` +
      `mean |P(spam) difference| ${disagreement.meanAbsSpamProbabilityDifference.toFixed(4)}, ` +
      `${bigDeltas} texts differ by more than 0.1.`;
    log(`    ${summary}`);
    for (const name of ["spam-v1", "spam-v2"]) {
      if (!result.models[name]) continue;
      const dir = result.passed ? join(modelsDir, name) : join(cache.root, "rejected", name);
      const other = name === "spam-v1" ? "spam-v2" : "spam-v1";
      const reportFile = join(dir, "report.json");
      const report = JSON.parse(readFileSync(reportFile, "utf8")) as Record<string, unknown>;
      report.disagreementWithOtherModel = { other, ...disagreement };
      writeAtomic(reportFile, `${JSON.stringify(report, null, 2)}\n`);
      const md = join(dir, "report.md");
      writeAtomic(md, `${readFileSync(md, "utf8")}\n## Disagreement with ${other}\n\n${summary}\n`);
    }
  });

  log("\nModels (test split):");
  log(
    "  model    version  F1      precision  recall  ROC-AUC  hard-ham FPR  threshold  p50 / p99 ms (1 text)  p50 ms (32)  size",
  );
  for (const spec of selected) {
    const m = result.models[spec.name];
    if (m === undefined) continue;
    const e = m.evaluation;
    log(
      `  ${spec.name}  ${spec.version}    ${e.test.f1.toFixed(4)}  ${e.test.precision.toFixed(4)}     ${e.test.recall.toFixed(4)}  ` +
        `${e.test.rocAuc.toFixed(4)}   ${(100 * e.slices.hardHam.falsePositiveRate).toFixed(2).padStart(5)} %       ` +
        `${m.manifest.decisionThreshold.toFixed(2)}       ${e.latency.single.p50Ms.toFixed(2)} / ${e.latency.single.p99Ms.toFixed(2)}            ` +
        `${e.latency.batch32.p50Ms.toFixed(1).padStart(5)}        ${(m.manifest.sizeBytes / 1024 / 1024).toFixed(2)} MiB`,
    );
  }
  log("  (full reports: models/<name>/report.md and report.json)");
  log("\nQuality gates:");
  for (const g of gates) log(`  ${g.passed ? "PASS" : "FAIL"}  ${g.gate}: ${g.detail}`);
  result.seconds = (performance.now() - started) / 1000;
  writeAtomic(timingsFile, JSON.stringify({ ...lastTimings, ...timings }, null, 2));
  log(`\nPipeline ${result.passed ? "passed" : "FAILED"} in ${fmtSeconds(result.seconds)}.`);
  return result;
}

/** Trains a model twice in two processes at once and checks the two model.onnx files are byte-identical. */
async function trainTwice(
  spec: ModelSpec,
  datasetFile: string,
  dir: string,
  progress: (message: string, fraction: number) => void,
): Promise<TrainedSummary> {
  const t0 = performance.now();
  rmSync(dir, { recursive: true, force: true });
  const runs = ["run-1", "run-2"];
  await Promise.all(
    runs.map((run, i) =>
      runTsChild("train-child.ts", [datasetFile, spec.name, join(dir, run), PRODUCER_VERSION], (line) => {
        if (i !== 0 || !line.startsWith("{")) return;
        const { message, fraction } = JSON.parse(line) as { message: string; fraction: number };
        progress(message, fraction);
      }),
    ),
  );
  const summaries = runs.map(
    (run) =>
      JSON.parse(readFileSync(join(dir, run, "trained.json"), "utf8")) as Omit<
        TrainedSummary,
        "repeatability" | "gitCommit" | "gitDirty" | "wallSeconds"
      >,
  );
  const sha256s = runs.map((run) => sha256Hex(readFileSync(join(dir, run, "model.onnx"))));
  const first = summaries[0];
  if (first === undefined) throw new Error("training produced no summary");
  const git = gitInfo();
  return {
    ...first,
    repeatability: { runs: runs.length, identical: new Set(sha256s).size === 1, sha256s },
    gitCommit: git.commit,
    gitDirty: git.dirty,
    wallSeconds: (performance.now() - t0) / 1000,
  };
}
