import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT, runTsChild } from "../child-process.js";
import type { ModelSpec } from "../model-specs.js";
import { sha256Hex } from "../rng.js";
import type { TrainedSummary } from "../trained-summary.js";

/** The package version, recorded as the ONNX producer version. */
export const PRODUCER_VERSION = (
  JSON.parse(readFileSync(join(REPO_ROOT, "ml/package.json"), "utf8")) as { version: string }
).version;

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

/**
 * The train stage: trains a model twice in two processes at once (train-child.ts) into `dir`/run-1 and run-2 and
 * checks the two model.onnx files are byte-identical (the repeatability gate).
 */
export async function trainTwice(
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

/** Where the train stage leaves the model it publishes. */
export const trainedOnnxPath = (dir: string) => join(dir, "run-1", "model.onnx");
