import { type SpawnSyncOptions, spawnSync } from "node:child_process";
import path from "node:path";
import { ROOT } from "./mesh.js";

/** PATH with the repository's node_modules/.bin first, so buf and protoc-gen-es are the pinned ones. */
export const toolEnv = {
  ...process.env,
  PATH: `${path.join(ROOT, "node_modules", ".bin")}${path.delimiter}${process.env.PATH ?? ""}`,
};

/** Runs a command in the repository root with inherited output; exits the process if it fails. */
export function run(command: string, args: string[], options: SpawnSyncOptions = {}): void {
  const result = spawnSync(command, args, { cwd: ROOT, env: toolEnv, stdio: "inherit", ...options });
  if (result.status !== 0) {
    console.error(`\n✗ ${command} ${args.join(" ")} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status ?? 1);
  }
}

/** Runs a command and returns its exit code and output. */
export function capture(command: string, args: string[], options: SpawnSyncOptions = {}) {
  const result = spawnSync(command, args, { cwd: ROOT, env: toolEnv, encoding: "utf8", ...options });
  return { status: result.status, stdout: String(result.stdout ?? ""), stderr: String(result.stderr ?? "") };
}
