// The one way tests run promtool (Debian's `prometheus` package, or SHADOWMESH_PROMTOOL_BIN): `check metrics` on an
// exposition text, `check rules` on a rules file, `test rules` on unit-test files. Every call is bounded in time and
// returns promtool's exit code and everything it printed, so a test asserts on both and shows the output on failure.
import { spawn } from "node:child_process";

export const PROMTOOL = process.env.SHADOWMESH_PROMTOOL_BIN ?? "/usr/bin/promtool";

export interface PromtoolResult {
  /** promtool's exit code; null when it was killed (see `output` for why). */
  code: number | null;
  /** stdout then stderr, as promtool printed them. */
  output: string;
}

export interface PromtoolOptions {
  /** Working directory (`test rules` resolves `rule_files` against it). */
  cwd?: string;
  /** Written to promtool's stdin, which is then closed. */
  input?: string;
  /** Killed (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
}

/** Runs `promtool ...args`; rejects only when promtool cannot be started at all. */
export function promtool(args: string[], options: PromtoolOptions = {}): Promise<PromtoolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, args, { cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.timeoutMs ?? 60_000);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${PROMTOOL}: ${error.message}`));
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      const output = `${stdout}${stderr}${timedOut ? `\n(${PROMTOOL} killed after ${options.timeoutMs ?? 60_000} ms)` : ""}`;
      resolve({ code, output });
    });
    // promtool may exit before reading all of stdin (EPIPE): its exit code and output tell what happened.
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");
  });
}

/** `promtool check metrics` on a Prometheus exposition text: clean means code 0 and no output (not even lint). */
export function checkMetrics(text: string): Promise<PromtoolResult> {
  return promtool(["check", "metrics"], { input: text });
}

/** `promtool check rules FILE` (run in the file's directory). */
export function checkRules(file: string, cwd?: string): Promise<PromtoolResult> {
  return promtool(["check", "rules", file], { cwd });
}

/** `promtool test rules FILES…` in `cwd`, where the files' `rule_files` are resolved. */
export function testRules(files: string[], cwd: string): Promise<PromtoolResult> {
  return promtool(["test", "rules", ...files], { cwd });
}
