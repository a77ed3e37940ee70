#!/usr/bin/env node
// Lays out the /app directory of each service image: the service's built code, its workspace packages, and only
// the npm packages it needs at run time (production dependencies, as npm itself resolves them), plus the bundled
// models (model-service) or the built web app (app-service).
//
//   node scripts/images/production-layout.mjs <out-dir> [model-service|app-service|metrics-service ...]
//
// Run it from the repository root after `npm ci` and `npm run build`; it writes <out-dir>/<service>/ for each
// service (all three by default). The Dockerfile runs it in the build stage and copies <out-dir>/<service>/ to
// /app of the service's image; `scripts/images/production-image.test.ts` runs the same script and starts every
// service from its output. It only reads the repository: every file is copied, none is moved or linked.
//
// Why not `npm ci --omit=dev --workspace <service>`: npm installs more than the workspace needs (metrics-service
// would get onnxruntime-node, 300 MB, a production dependency of another workspace), and it would compile
// better-sqlite3 a second time. `npm ls --omit=dev --all --workspace <service>` gives exactly the packages the
// service's production dependency graph reaches, and those are copied from the full install, native builds included
// (so they are built for the same Debian and Node as the image: the build stage uses the same base).
//
// Files end up read-only (0444, 0555 for executables and directories): in the image they belong to root and the
// service runs as uid 10001, so nothing under /app can change.
// Plain JavaScript with no dependencies, like scripts/ensure-install.mjs.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

/** What each image holds besides its workspace and the packages npm says it needs. */
const SERVICES = {
  "model-service": {
    workspace: "services/model-service",
    // Every bundled model version (a directory of models/ with a model.onnx); a pod picks one with
    // MODEL_SERVICE_MODEL_DIR.
    extra: () =>
      fs
        .readdirSync("models", { withFileTypes: true })
        .filter(
          (entry) => entry.isDirectory() && fs.existsSync(path.join("models", entry.name, "model.onnx")),
        )
        .map((entry) => path.join("models", entry.name)),
  },
  "app-service": { workspace: "services/app-service", extra: () => ["web/dist"] },
  "metrics-service": { workspace: "services/metrics-service", extra: () => [] },
};

/** Build output that never runs in a service: compiled tests, test helpers, benchmarks, declarations, maps. */
const NOT_RUNTIME_FILE = /(\.test\.(js|d\.ts)(\.map)?|\.d\.ts(\.map)?|\.js\.map|\.tsbuildinfo)$/;
const NOT_RUNTIME_DIRS = new Set(["testing", "e2e", "bench"]);

/**
 * Parts of npm packages that are never loaded on this platform, by package name and path inside the package.
 * onnxruntime-node ships its native binaries for five platforms (about 290 MB); it loads
 * `bin/napi-v6/<platform>/<arch>/` only. better-sqlite3 keeps its SQLite sources and compiler output next to the
 * compiled addon; it loads `build/Release/better_sqlite3.node` (what its prebuilt downloads contain, too).
 */
function keepInPackage(name, rel) {
  if (name === "onnxruntime-node") {
    const parts = rel.split(path.sep);
    if (parts[0] === "bin" && parts[1] === "napi-v6" && parts.length >= 3) {
      return parts[2] === process.platform && (parts.length === 3 || parts[3] === process.arch);
    }
  }
  if (name === "better-sqlite3") {
    if (
      rel === "deps" ||
      rel.startsWith(`deps${path.sep}`) ||
      rel === "src" ||
      rel.startsWith(`src${path.sep}`)
    ) {
      return false;
    }
    const release = path.join("build", "Release");
    if (rel === "build" || rel === release) {
      return true;
    }
    if (rel.startsWith(`build${path.sep}`)) {
      return rel === path.join(release, "better_sqlite3.node");
    }
  }
  return true;
}

function fail(message) {
  console.error(`production-layout: ${message}`);
  process.exit(1);
}

/** The package directories (relative to the root) that the workspace's production dependency graph reaches. */
function productionPackages(workspace) {
  const name = JSON.parse(fs.readFileSync(path.join(workspace, "package.json"), "utf8")).name;
  let output;
  try {
    output = execFileSync("npm", ["ls", "--omit=dev", "--all", "--parseable", "--workspace", name], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    // npm ls exits non-zero when a needed package is missing or does not satisfy its range: never ship that.
    fail(`npm ls for ${name} failed (run npm ci first):\n${error.stderr || error.message}`);
  }
  const root = fs.realpathSync(".");
  const dirs = [
    ...new Set(
      output
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => path.relative(root, line.trim())),
    ),
  ].filter((dir) => dir !== "");
  for (const dir of dirs) {
    if (dir.startsWith("..") || path.isAbsolute(dir) || !dir.startsWith(`node_modules${path.sep}`)) {
      fail(`npm ls for ${name} listed ${dir}, which is not a package inside node_modules/`);
    }
  }
  return dirs.sort();
}

function copyTree(from, to, keep) {
  fs.cpSync(from, to, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (source) => keep(path.relative(from, source)),
  });
}

/** A workspace package: its package.json and its build output (the package's "files", else dist/), runtime only. */
function copyWorkspace(dir, out) {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  fs.mkdirSync(path.join(out, dir), { recursive: true });
  fs.copyFileSync(path.join(dir, "package.json"), path.join(out, dir, "package.json"));
  for (const entry of manifest.files ?? ["dist"]) {
    const from = path.join(dir, entry);
    if (!fs.existsSync(from)) {
      fail(`${from} does not exist: run npm run build first`);
    }
    copyTree(from, path.join(out, dir, entry), (rel) => {
      const parts = rel.split(path.sep);
      return !NOT_RUNTIME_FILE.test(rel) && !parts.some((part) => NOT_RUNTIME_DIRS.has(part));
    });
  }
}

function layOut(service, out) {
  const { workspace, extra } = SERVICES[service];
  if (fs.existsSync(out)) {
    fail(`${out} already exists; give a fresh directory`);
  }
  fs.mkdirSync(out, { recursive: true });
  let packages = 0;
  for (const dir of productionPackages(workspace)) {
    const stat = fs.lstatSync(dir);
    if (stat.isSymbolicLink()) {
      // A workspace package: npm links node_modules/@shadowmesh/<name> to its folder; keep the same relative link.
      const target = fs.readlinkSync(dir);
      const resolved = path.relative(".", path.resolve(path.dirname(dir), target));
      if (path.isAbsolute(target) || resolved.startsWith("..")) {
        fail(`${dir} links outside the repository (${target})`);
      }
      fs.mkdirSync(path.join(out, path.dirname(dir)), { recursive: true });
      fs.symlinkSync(target, path.join(out, dir));
      copyWorkspace(resolved, out);
      continue;
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    // A package's own node_modules/ holds nested dependencies that npm ls lists (or not) on their own.
    copyTree(dir, path.join(out, dir), (rel) => {
      const first = rel.split(path.sep)[0];
      return first !== "node_modules" && keepInPackage(manifest.name, rel);
    });
    packages += 1;
  }
  for (const dir of extra()) {
    if (!fs.existsSync(dir)) {
      fail(`${dir} does not exist: run npm run build first`);
    }
    copyTree(dir, path.join(out, dir), () => true);
  }
  const entry = path.join(out, workspace, "dist", "main.js");
  if (!fs.existsSync(entry)) {
    fail(`${entry} is missing: run npm run build first`);
  }
  const bytes = makeReadOnly(out);
  console.log(`${service}: ${packages} npm packages, ${(bytes / 1e6).toFixed(1)} MB in ${out}`);
}

/** Files 0444 (0555 when executable), directories 0555, deepest first; returns the total size of the files. */
function makeReadOnly(dir) {
  let bytes = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) {
      continue;
    }
    if (entry.isDirectory()) {
      bytes += makeReadOnly(full);
    } else {
      const { mode, size } = fs.statSync(full);
      fs.chmodSync(full, mode & 0o111 ? 0o555 : 0o444);
      bytes += size;
    }
  }
  fs.chmodSync(dir, 0o555);
  return bytes;
}

const [outDir, ...requested] = process.argv.slice(2);
if (!outDir || outDir.startsWith("-")) {
  fail("usage: node scripts/images/production-layout.mjs <out-dir> [service ...]");
}
const services = requested.length > 0 ? requested : Object.keys(SERVICES);
for (const service of services) {
  if (!(service in SERVICES)) {
    fail(`unknown service ${service}; one of ${Object.keys(SERVICES).join(", ")}`);
  }
}
if (!fs.existsSync("package-lock.json") || !fs.existsSync("node_modules")) {
  fail("run it from the repository root after npm ci");
}
for (const service of services) {
  layOut(service, path.resolve(outDir, service));
}
