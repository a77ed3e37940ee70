import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Dockerfile,
  type DockerIgnore,
  execForm,
  joinPosix,
  parseDockerfile,
  parseDockerIgnore,
  type ResolvedStage,
  resolveStage,
  splitWords,
} from "./dockerfile.js";

/**
 * The image layout without an image: what the Dockerfile's build stage produces (its layout step, run the same
 * way), and a target's file system assembled by following its COPY instructions into a directory, so that the
 * target's ENTRYPOINT can run from it with the target's ENV and USER, the way a container would.
 */

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const SERVICES = ["model-service", "app-service", "metrics-service"] as const;
export type Service = (typeof SERVICES)[number];
export const LAYOUT_SCRIPT = "scripts/images/production-layout.mjs";

export function loadDockerfile(): Dockerfile {
  return parseDockerfile(fs.readFileSync(path.join(ROOT, "Dockerfile"), "utf8"));
}

export function loadDockerIgnore(): DockerIgnore {
  return parseDockerIgnore(fs.readFileSync(path.join(ROOT, ".dockerignore"), "utf8"));
}

/** The build stage's layout step: the container directory it writes and the services it names. */
export interface LayoutStep {
  readonly stage: ResolvedStage;
  /** Absolute path, inside the build stage, of the directory the step writes. */
  readonly outDir: string;
  readonly services: string[];
}

export function layoutStep(file: Dockerfile, stageName = "build"): LayoutStep {
  const stage = resolveStage(file, stageName);
  const steps = stage.runs.filter(({ instruction }) => instruction.args.includes(LAYOUT_SCRIPT));
  if (steps.length !== 1) {
    throw new Error(`the ${stageName} stage must run ${LAYOUT_SCRIPT} exactly once (found ${steps.length})`);
  }
  const { instruction, workdir } = steps[0] as (typeof steps)[number];
  const words = execForm(instruction) ?? splitWords(instruction.args, instruction.line);
  if (words[0] !== "node" || words[1] !== LAYOUT_SCRIPT || words.length < 3) {
    throw new Error(`line ${instruction.line}: expected "node ${LAYOUT_SCRIPT} <out-dir> [service ...]"`);
  }
  if (workdir === "/") {
    throw new Error(`line ${instruction.line}: the layout step must run in the repository's WORKDIR`);
  }
  return { stage, outDir: joinPosix(workdir, words[2] as string), services: words.slice(3) };
}

/**
 * Runs the layout script in `cwd` (a repository with node_modules and the build output) writing to `outDir`,
 * as the Dockerfile's build stage does.
 */
export function runLayout(cwd: string, outDir: string, services: readonly string[] = []) {
  return new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, LAYOUT_SCRIPT), outDir, ...services], {
      cwd,
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("close", (code) => resolve({ code, output }));
  });
}

/** Where a build stage's absolute paths are on this machine. */
export interface BuildStageMapping {
  /** The build stage's WORKDIR (the repository) → this directory. */
  readonly workdirHost: string;
  /** The layout step's out dir → this directory. */
  readonly outHost: string;
}

function hostPathInBuild(containerPath: string, step: LayoutStep, mapping: BuildStageMapping): string {
  const inside = (dir: string) => containerPath === dir || containerPath.startsWith(`${dir}/`);
  const rest = (dir: string) => containerPath.slice(dir.length).replace(/^\//, "");
  if (inside(step.outDir)) {
    return path.join(mapping.outHost, rest(step.outDir));
  }
  if (inside(step.stage.workdir)) {
    return path.join(mapping.workdirHost, rest(step.stage.workdir));
  }
  throw new Error(
    `${containerPath} in the build stage is neither under its WORKDIR nor the layout's out dir`,
  );
}

/**
 * Assembles `target`'s files under `imageRoot` (which stands for `/`) by following every COPY of its stage chain:
 * `--from=build` sources come from the layout output and the repository, context sources from the repository minus
 * `.dockerignore`. Directory sources copy their contents, as COPY does.
 */
export function assembleImage(
  file: Dockerfile,
  target: string,
  imageRoot: string,
  mapping: BuildStageMapping,
): ResolvedStage {
  const resolved = resolveStage(file, target);
  const step = layoutStep(file);
  const ignore = loadDockerIgnore();
  fs.mkdirSync(imageRoot, { recursive: true });
  for (const copy of resolved.copies) {
    if (copy.from !== undefined && copy.from !== step.stage.name) {
      throw new Error(`line ${copy.line}: COPY --from=${copy.from}: only the build stage is mapped here`);
    }
    for (const source of copy.sources) {
      const from =
        copy.from === undefined
          ? path.join(ROOT, source)
          : hostPathInBuild(joinPosix(step.stage.workdir, source).replace(/\/$/, ""), step, mapping);
      if (!fs.existsSync(from)) {
        throw new Error(`line ${copy.line}: COPY source ${source} does not exist (${from})`);
      }
      const isDir = fs.statSync(from).isDirectory();
      const dest =
        isDir || copy.absoluteDest.endsWith("/")
          ? path.join(imageRoot, copy.absoluteDest, isDir ? "" : path.basename(source))
          : path.join(imageRoot, copy.absoluteDest);
      fs.mkdirSync(isDir ? dest : path.dirname(dest), { recursive: true });
      if (copy.from !== undefined && isDir) {
        // The build stage's output is read-only and never changes: hard links stand for copies (fast), with a
        // real copy when the two directories are on different file systems.
        try {
          execFileSync("cp", ["-al", `${from}/.`, dest]);
        } catch {
          execFileSync("cp", ["-a", `${from}/.`, dest]);
        }
        continue;
      }
      fs.cpSync(from, dest, {
        recursive: true,
        verbatimSymlinks: true,
        preserveTimestamps: true,
        filter: (item) =>
          copy.from !== undefined || !ignore.excludes(path.relative(ROOT, item).split(path.sep).join("/")),
      });
    }
  }
  return resolved;
}

/** The numeric uid and gid of a `USER uid:gid` line; anything else is refused (k8s runAsNonRoot needs numbers). */
export function numericUser(user: string | undefined): { uid: number; gid: number } {
  const match = /^(\d+):(\d+)$/.exec(user ?? "");
  if (!match) {
    throw new Error(`USER must be numeric uid:gid, got ${user}`);
  }
  return { uid: Number(match[1]), gid: Number(match[2]) };
}

export const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

export interface Container {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal) once the process is gone. */
  readonly exited: Promise<number | NodeJS.Signals>;
}

/**
 * Runs the target's ENTRYPOINT from `imageRoot` like a container: cwd = WORKDIR, the image's ENV (absolute paths
 * mapped into `imageRoot`) plus `overrides`, nothing inherited from this process but PATH, and — when the tests run
 * as root — the image's numeric USER, so files owned by root are as read-only as in the image.
 */
export function startContainer(
  resolved: ResolvedStage,
  imageRoot: string,
  overrides: Record<string, string>,
): Container {
  const entrypoint = resolved.entrypoint ? execForm(resolved.entrypoint) : undefined;
  if (entrypoint === undefined || entrypoint[0] !== "node") {
    throw new Error(`${resolved.name}: ENTRYPOINT must be the exec form ["node", …]`);
  }
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: imageRoot };
  for (const [key, value] of Object.entries(resolved.env)) {
    env[key] = value.startsWith("/") ? path.join(imageRoot, value) : value;
  }
  Object.assign(env, overrides);
  const user = numericUser(resolved.user);
  const child = spawn(process.execPath, entrypoint.slice(1), {
    cwd: path.join(imageRoot, resolved.workdir),
    env,
    stdio: ["ignore", "pipe", "pipe"],
    ...(isRoot ? { uid: user.uid, gid: user.gid } : {}),
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | NodeJS.Signals>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? (signal as NodeJS.Signals))),
  );
  return { child, output: () => output, exited };
}

/** A directory the image's user may write to (a mounted volume): owned by that user when we are root. */
export function volume(dir: string, resolved: ResolvedStage): string {
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.mkdirSync(dir, { mode: 0o700 });
  if (isRoot) {
    const { uid, gid } = numericUser(resolved.user);
    fs.chownSync(dir, uid, gid);
  }
  return dir;
}

/** Every file and directory under `dir` with its size and mtime, to prove that nothing changed. */
export function snapshot(dir: string): Map<string, string> {
  const result = new Map<string, string>();
  const walk = (current: string) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      const stat = fs.lstatSync(full);
      result.set(path.relative(dir, full), `${stat.mode.toString(8)} ${stat.size} ${stat.mtimeMs}`);
      if (entry.isDirectory()) {
        walk(full);
      }
    }
  };
  walk(dir);
  return result;
}

/** Removes a tree that the layout made read-only (needs write permission back when we are not root). */
export function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) {
    return;
  }
  if (!isRoot) {
    execFileSync("chmod", ["-R", "u+w", dir]);
  }
  execFileSync("rm", ["-rf", "--", dir]);
}

/** Tracked files of the repository under `dir` (relative, slash-separated). */
export function trackedFiles(dir: string): string[] {
  return execFileSync("git", ["ls-files", "-z", "--", dir], { cwd: ROOT, encoding: "utf8" })
    .split("\0")
    .filter((file) => file !== "");
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
