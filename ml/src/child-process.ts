import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The repository root (ml/src/ → ../..). Child processes run from here so `--import tsx` resolves. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Runs one of this package's TypeScript entry points in a fresh Node process (with tsx), streaming its stdout lines
 * to `onLine`. Rejects with the child's stderr when it exits non-zero.
 */
export function runTsChild(
  script: string,
  args: string[],
  onLine: (line: string) => void = () => {},
): Promise<void> {
  const scriptPath = fileURLToPath(new URL(`./${script}`, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", scriptPath, ...args], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_OPTIONS: "" },
    });
    let stderr = "";
    let buffered = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      buffered += chunk;
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        onLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (buffered !== "") onLine(buffered);
      if (code === 0) resolve();
      else reject(new Error(`${script} exited with ${code}: ${stderr.slice(-4000)}`));
    });
  });
}
