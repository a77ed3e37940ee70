import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { moduleGraphHash, type StageCache, stageKey, writeAtomic } from "./cache.js";

/** In-stage progress: a message and the fraction of the stage done (0…1). */
export type Progress = (message: string, fraction: number) => void;

export function fmtSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

/** A stage whose output is stored under ml/.cache/<cacheName>/<key>/output.json. */
export interface CachedStage<T> {
  /** The name printed and timed, e.g. "train:spam-v1". */
  name: string;
  /** The kind `--rerun` names ("parse", "split", "train", "evaluate"); also the key's tag. */
  kind: string;
  /** The cache directory (default: kind), e.g. "train-spam-v1". */
  cacheName?: string;
  /** What the stage does, printed at its start. */
  detail: string;
  /** What the stage reads: the keys of the stages before it, or a fingerprint of the raw data. */
  inputs: readonly unknown[];
  /** The modules that run the stage; the key hashes them and everything they import (module-graph.ts). */
  sources: readonly string[];
  /** The stage's configuration. */
  config?: readonly unknown[];
  /** Runs the stage on a miss; `dir` is its cache directory, for outputs besides the JSON (e.g. model.onnx). */
  run: (progress: Progress, dir: string) => Promise<T>;
}

export interface StageOutput<T> {
  value: T;
  key: string;
  dir: string;
  cached: boolean;
}

export interface StageRunnerOptions {
  log: (line: string) => void;
  /** Ignore every cached output. */
  force?: boolean;
  /** Ignore the cached outputs of these kinds only. */
  rerun?: readonly string[];
  /** Where stage sources are resolved (default ml/src; tests use a scratch tree). */
  sourceRoot?: string;
}

/**
 * Runs the pipeline's stages in order: numbering, the pipeline ETA from the last run's timings, throttled in-stage
 * progress with an ETA, and (for cached stages) the content-hash cache: key = hash of the stage's inputs, of the
 * source of every module it runs, and of its configuration; read back on a hit, run and stored on a miss.
 */
export class StageRunner {
  private index = 0;
  private readonly timings: Record<string, number> = {};
  private readonly lastTimings: Record<string, number>;
  private readonly timingsFile: string;

  constructor(
    readonly cache: StageCache,
    private readonly stageNames: readonly string[],
    private readonly options: StageRunnerOptions,
  ) {
    this.timingsFile = join(cache.root, "timings.json");
    this.lastTimings = existsSync(this.timingsFile) ? JSON.parse(readFileSync(this.timingsFile, "utf8")) : {};
  }

  /** Runs one stage (uncached) with numbering, ETA and progress. */
  async run<T>(name: string, detail: string, body: (progress: Progress) => Promise<T>): Promise<T> {
    const { log } = this.options;
    this.index += 1;
    const t0 = performance.now();
    const eta = this.stageNames
      .slice(this.index - 1)
      .reduce((sum, stage) => sum + (this.lastTimings[stage] ?? 0), 0);
    log(
      `[${this.index}/${this.stageNames.length}] ${name}: ${detail}${eta > 0 ? ` (pipeline ETA ${fmtSeconds(eta)}, from the last run)` : ""}`,
    );
    let lastPrint = 0;
    const progress: Progress = (message, fraction) => {
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
    this.timings[name] = seconds;
    log(`    ${name}: done in ${fmtSeconds(seconds)}`);
    return result;
  }

  /** The one cached-stage pattern: key, read back on a hit, run and store on a miss. */
  async cached<T>(stage: CachedStage<T>): Promise<StageOutput<T>> {
    const key = stageKey(stage.kind, [
      ...stage.inputs,
      moduleGraphHash(stage.sources, this.options.sourceRoot),
      ...(stage.config ?? []),
    ]);
    const cacheName = stage.cacheName ?? stage.kind;
    const dir = this.cache.dir(cacheName, key);
    const useCache = !this.options.force && !(this.options.rerun ?? []).includes(stage.kind);
    const hit = useCache ? this.cache.readJson<T>(cacheName, key) : undefined;
    const value = await this.run(
      stage.name,
      hit !== undefined ? `${stage.detail} (cached)` : stage.detail,
      async (progress) => {
        if (hit !== undefined) return hit;
        const output = await stage.run(progress, dir);
        this.cache.writeJson(cacheName, key, output);
        return output;
      },
    );
    return { value, key, dir, cached: hit !== undefined };
  }

  /** Keeps this run's stage timings for the next run's ETA. */
  saveTimings(): void {
    writeAtomic(this.timingsFile, JSON.stringify({ ...this.lastTimings, ...this.timings }, null, 2));
  }
}
