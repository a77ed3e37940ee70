import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { moduleGraph, SRC_DIR } from "./module-graph.js";
import { sha256Hex } from "./rng.js";

/** A content hash of some of this package's source files: a stage re-runs when the code it depends on changes. */
export function sourceHash(files: readonly string[], root = SRC_DIR): string {
  return sha256Hex(files.map((f) => `${f}\n${readFileSync(join(root, f), "utf8")}`).join("\n\u0000\n"));
}

/** The content hash of the entry modules and everything they import (see module-graph.ts). */
export function moduleGraphHash(entries: readonly string[], root = SRC_DIR): string {
  return sourceHash(moduleGraph(entries, root), root);
}

/** The key of a stage run: a hash of everything that determines its output. */
export function stageKey(stage: string, parts: readonly unknown[]): string {
  return sha256Hex(JSON.stringify([stage, ...parts])).slice(0, 32);
}

/** A content-addressed store under ml/.cache: one directory per stage, one entry per key. */
export class StageCache {
  constructor(readonly root: string) {}

  dir(stage: string, key: string): string {
    return join(this.root, stage.replace(/[^a-z0-9-]/gi, "_"), key);
  }

  /**
   * The cached JSON of a stage run, or undefined when the stage must (re)run: no entry, or one that is not valid JSON
   * (writes are atomic, but a disk can fill up or someone can edit a file; an unreadable entry is re-run, not trusted).
   */
  readJson<T>(stage: string, key: string): T | undefined {
    const file = join(this.dir(stage, key), "output.json");
    if (!existsSync(file)) return undefined;
    try {
      return JSON.parse(readFileSync(file, "utf8")) as T;
    } catch {
      return undefined;
    }
  }

  /** Writes atomically (temp file + rename), so an interrupted run never leaves a half-written cache entry. */
  writeJson(stage: string, key: string, value: unknown): void {
    const file = join(this.dir(stage, key), "output.json");
    writeAtomic(file, JSON.stringify(value));
  }
}

export function writeAtomic(file: string, data: string | Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}
