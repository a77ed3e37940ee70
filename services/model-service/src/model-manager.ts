import { createHash } from "node:crypto";
import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "@shadowmesh/common";
import { parseManifest } from "./manifest.js";
import type { Classifier } from "./model.js";

/** The hex sha256 of a file's contents. */
async function fileSha256(file: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(file))
    .digest("hex");
}

/** Loads the model in a directory; `loadModel` in production, a test double in tests. */
export type ModelLoader = (dir: string) => Promise<Classifier>;

export type ReloadResult = "loaded" | "unchanged" | "failed";

export interface ModelManagerHooks {
  /** A model was loaded (at start or by a reload). */
  loaded?: (model: Classifier, previous: Classifier | undefined) => void;
  /** A reload was attempted. */
  reloaded?: (result: ReloadResult) => void;
}

/** A model in use: released when the inference run that borrowed it is done. */
export interface ModelLease {
  readonly model: Classifier;
  release(): void;
}

interface Entry {
  model: Classifier;
  leases: number;
  retired: boolean;
}

/**
 * Owns the serving model and swaps it without a restart. Each inference run leases the current model; a reload
 * loads and verifies the new model completely before the swap, so calls never see a half-loaded model, and the old
 * session is released only once its last run has finished. A model that fails to load is logged and counted, and
 * the old one keeps serving.
 */
export class ModelManager {
  #current: Entry | undefined;
  #reloading: Promise<ReloadResult> | undefined;
  #again = false;
  #watching = false;
  #debounceMs = 300;
  #dirWatcher: FSWatcher | undefined;
  #parentWatcher: FSWatcher | undefined;
  #debounce: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    readonly dir: string,
    private readonly loader: ModelLoader,
    private readonly logger: Logger,
    private readonly hooks: ModelManagerHooks = {},
  ) {}

  /** Loads the first model; throws the loader's error (a ModelLoadError) when it cannot be served. */
  async start(): Promise<Classifier> {
    const model = await this.loader(this.dir);
    this.#swap(model);
    return model;
  }

  /** The serving model, if one is loaded. */
  get current(): Classifier | undefined {
    return this.#current?.model;
  }

  /** Borrows the serving model for one inference run. */
  lease(): ModelLease | undefined {
    const entry = this.#current;
    if (!entry) {
      return undefined;
    }
    entry.leases++;
    let released = false;
    return {
      model: entry.model,
      release: () => {
        if (released) return;
        released = true;
        entry.leases--;
        this.#disposeIfIdle(entry);
      },
    };
  }

  /**
   * Loads the model in the directory again and swaps it in if it differs from the serving one (by sha256 and
   * version; model.onnx is hashed and checked against the manifest every time). Reloads never overlap: a request
   * during a reload runs once more after it.
   */
  reload(reason: string): Promise<ReloadResult> {
    // MODEL_DIR may name another directory than the one watched (replaced by a rename or a symlink swap).
    this.#attachDirWatch();
    if (this.#reloading) {
      this.#again = true;
      return this.#reloading;
    }
    const run = async (): Promise<ReloadResult> => {
      let result: ReloadResult;
      do {
        this.#again = false;
        result = await this.#reloadOnce(reason);
      } while (this.#again && !this.#closed);
      return result;
    };
    this.#reloading = run().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  async #reloadOnce(reason: string): Promise<ReloadResult> {
    const current = this.#current?.model;
    if (current) {
      try {
        const manifest = parseManifest(JSON.parse(await readFile(path.join(this.dir, "model.json"), "utf8")));
        // Unchanged only if model.onnx still is the file the manifest describes: a replaced model.onnx under an
        // unchanged model.json goes to the loader, which rejects it (sha256 mismatch) and the old model serves on.
        if (
          manifest.sha256 === current.info.sha256 &&
          manifest.version === current.info.version &&
          (await fileSha256(path.join(this.dir, "model.onnx"))) === manifest.sha256
        ) {
          this.logger.info({ reason, version: current.info.version }, "model unchanged: nothing to reload");
          this.hooks.reloaded?.("unchanged");
          return "unchanged";
        }
      } catch {
        // The loader reports the problem with the file name below.
      }
    }
    try {
      const model = await this.loader(this.dir);
      if (this.#closed) {
        await model.close();
        return "failed";
      }
      const previous = this.#swap(model);
      this.logger.info(
        {
          reason,
          from: previous ? `${previous.info.name}@${previous.info.version}` : undefined,
          to: `${model.info.name}@${model.info.version}`,
        },
        "model reloaded",
      );
      this.hooks.reloaded?.("loaded");
      return "loaded";
    } catch (error) {
      this.logger.error(
        { reason, err: error instanceof Error ? error.message : String(error) },
        "model reload rejected: the previous model keeps serving",
      );
      this.hooks.reloaded?.("failed");
      return "failed";
    }
  }

  #swap(model: Classifier): Classifier | undefined {
    const previous = this.#current;
    this.#current = { model, leases: 0, retired: false };
    this.hooks.loaded?.(model, previous?.model);
    if (previous) {
      previous.retired = true;
      this.#disposeIfIdle(previous);
    }
    return previous?.model;
  }

  #disposeIfIdle(entry: Entry): void {
    if (entry.retired && entry.leases === 0) {
      entry.model
        .close()
        .catch((error: unknown) => this.logger.warn({ err: error }, "closing an old model failed"));
    }
  }

  /**
   * Reloads when the model directory changes, after `debounceMs` of quiet. Two watches:
   * - the directory itself, for files written into it (write + rename: the temporary `.model.onnx.tmp` is ignored,
   *   the rename that follows is seen) and for Kubernetes ConfigMap/Secret volumes, whose files are symlinks through
   *   `..data`, a symlink swapped atomically on every update (names starting with `..` are not temporary files);
   * - its parent, for the directory being replaced (`mv dir dir.old && mv new dir`, or MODEL_DIR a symlink that is
   *   swapped): an inotify watch follows the old directory, so every reload attaches the directory watch again to
   *   whatever MODEL_DIR names now.
   */
  watch(debounceMs = 300): void {
    if (this.#watching || this.#closed) return;
    this.#watching = true;
    this.#debounceMs = debounceMs;
    this.#attachDirWatch();
    const name = path.basename(this.dir);
    try {
      this.#parentWatcher = watch(path.dirname(this.dir), { persistent: false }, (_event, file) => {
        if (file === name) this.#changed("model directory replaced");
      });
      this.#parentWatcher.on("error", (error) =>
        this.logger.warn(
          { err: error, dir: path.dirname(this.dir) },
          "watching the model directory's parent failed",
        ),
      );
    } catch (error) {
      this.logger.warn(
        { err: error, dir: path.dirname(this.dir) },
        "cannot watch the model directory's parent: a replaced directory is seen only on SIGHUP",
      );
    }
  }

  #changed(reason: string): void {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.reload(reason), this.#debounceMs);
    this.#debounce.unref();
  }

  /** (Re)attaches the watch of MODEL_DIR to the directory that path names now. */
  #attachDirWatch(): void {
    if (!this.#watching || this.#closed) return;
    this.#dirWatcher?.close();
    this.#dirWatcher = undefined;
    try {
      const watcher = watch(this.dir, { persistent: false }, (_event, file) => {
        if (file?.startsWith(".") && !file.startsWith("..")) return; // temporary files of an atomic write
        this.#changed("files changed");
      });
      watcher.on("error", (error) => {
        this.logger.warn({ err: error, dir: this.dir }, "watching the model directory failed");
        watcher.close();
        if (this.#dirWatcher === watcher) this.#dirWatcher = undefined;
      });
      this.#dirWatcher = watcher;
    } catch (error) {
      // The directory is being replaced; the parent's watch sees the new one arrive.
      this.logger.warn({ err: error, dir: this.dir }, "cannot watch the model directory now");
    }
  }

  /** Stops watching and releases the serving model once idle. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#dirWatcher?.close();
    this.#parentWatcher?.close();
    clearTimeout(this.#debounce);
    await this.#reloading?.catch(() => undefined);
    const entry = this.#current;
    this.#current = undefined;
    if (entry) {
      entry.retired = true;
      this.#disposeIfIdle(entry);
    }
  }
}
