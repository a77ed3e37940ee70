#!/usr/bin/env node
// Installs what is missing before `npm start` and `npm test`, so that both work on a fresh clone.
// Plain JavaScript with no dependencies: it runs before node_modules exists.
//  - npm packages: `npm ci` when node_modules is missing or package-lock.json changed since the last install.
//  - with --system: the Debian tools the tests drive (chromium, promtool, h2load, wrk, python3-grpcio, grpc_tools),
//    installed with apt-get when we are root; otherwise a clear message saying what to install.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const lock = path.join(root, "package-lock.json");
const stamp = path.join(root, "node_modules", ".shadowmesh-install-stamp");
// onnxruntime-node's install script downloads CUDA binaries (offline here, and unneeded: the CPU build ships inside
// the package). Its script is also denied in package.json "allowScripts"; this covers older npm versions.
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip", ONNXRUNTIME_NODE_INSTALL_CUDA: "skip" };

const lockHash = createHash("sha256").update(readFileSync(lock)).digest("hex");
const installed = existsSync(stamp) ? readFileSync(stamp, "utf8").trim() : "";
if (installed !== lockHash) {
  console.log("Installing npm packages (npm ci)…");
  const result = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: root, env, stdio: "inherit" });
  if (result.status !== 0) {
    console.error("npm ci failed; see above.");
    process.exit(result.status ?? 1);
  }
  writeFileSync(stamp, `${lockHash}\n`);
}

if (process.argv.includes("--system")) {
  const has = (cmd, args = ["--version"]) => spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
  const needed = [
    ["chromium", () => has("/usr/bin/chromium")],
    ["prometheus", () => has("promtool")],
    ["nghttp2-client", () => has("h2load")],
    ["wrk", () => existsSync("/usr/bin/wrk")],
    ["python3-grpcio", () => has("/usr/bin/python3", ["-c", "import grpc"])],
    ["python3-grpc-tools", () => has("/usr/bin/python3", ["-c", "import grpc_tools.protoc"])],
  ];
  const missing = needed.filter(([, present]) => !present()).map(([pkg]) => pkg);
  if (missing.length > 0) {
    const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
    if (isRoot && has("apt-get")) {
      console.log(`Installing Debian packages the tests use: ${missing.join(" ")}`);
      const aptEnv = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
      execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env: aptEnv });
      execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], {
        stdio: "inherit",
        env: aptEnv,
      });
    } else {
      console.error(`The tests need these Debian packages: ${missing.join(" ")}`);
      console.error(`Install them with: sudo apt-get install -y ${missing.join(" ")}`);
      process.exit(1);
    }
  }
}
