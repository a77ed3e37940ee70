import { type ChildProcess, spawn } from "node:child_process";
import type { BoundPorts } from "../service.js";

/**
 * One process harness for every service's tests: spawns a service's entry (main.ts through tsx, or a built .js)
 * with its environment, waits for the skeleton's `{"msg":"listening","ports":{...}}` log line (runService writes
 * it) and hands back the bound ports, every output line, and ways to stop it. Every process started here is
 * killed when the test process exits, whatever happened.
 */

export interface StartOptions {
  /** The service's entry file (.ts runs through tsx). */
  entry: string;
  /** Environment on top of this process's own. */
  env?: Record<string, string>;
  args?: string[];
  cwd?: string;
  /** Longest wait for the "listening" line (default 60 s). */
  timeoutMs?: number;
  /**
   * Also wait for a line whose `msg` is this (e.g. "serving", logged once the service is ready), within the same
   * time limit.
   */
  until?: string;
}

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcess {
  readonly process: ChildProcess;
  /** The bound ports from the "listening" line, e.g. `{ grpc: 41235, metrics: 38011 }`. */
  readonly ports: BoundPorts;
  /** Every stdout and stderr line so far (stdout lines are JSON log lines). */
  readonly lines: string[];
  /** stderr alone. */
  readonly stderr: string[];
  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<ExitResult>;
  /** SIGKILL (SIGCONT first, in case the test stopped it) and waits for the exit; nothing if it has exited. */
  kill(): Promise<void>;
  waitForExit(): Promise<ExitResult>;
  /** Waits until a line satisfies `predicate` (already seen lines count), for at most `timeoutMs`. */
  waitForLine(predicate: (line: string) => boolean, timeoutMs?: number): Promise<string>;
}

const running = new Set<ChildProcess>();
let cleanupInstalled = false;

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once("exit", () => {
    for (const child of running) {
      child.kill("SIGKILL");
    }
  });
}

function commandOf(entry: string): string[] {
  return entry.endsWith(".ts") ? ["--import", "tsx", entry] : [entry];
}

/** Spawns the entry with pipes; every line goes to `onLine`. */
function spawnEntry(options: StartOptions, onLine: (line: string, stream: "stdout" | "stderr") => void) {
  installCleanup();
  const child = spawn(process.execPath, [...commandOf(options.entry), ...(options.args ?? [])], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  const exited = new Promise<ExitResult>((resolve) => {
    // "close", not "exit": every line of output has been read by then.
    child.once("close", (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  for (const name of ["stdout", "stderr"] as const) {
    let buffered = "";
    child[name]?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        onLine(buffered.slice(0, newline), name);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf("\n");
      }
    });
    child[name]?.on("end", () => {
      if (buffered) onLine(buffered, name);
      buffered = "";
    });
  }
  return { child, exited };
}

function parseLog(line: string): { msg?: string; ports?: BoundPorts } | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as { msg?: string; ports?: BoundPorts };
  } catch {
    return undefined;
  }
}

/** Starts a service and resolves once it logs "listening" (and `until`, if given). */
export async function startService(options: StartOptions): Promise<ServiceProcess> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const lines: string[] = [];
  const stderr: string[] = [];
  const watchers = new Set<(line: string) => void>();
  let ports: BoundPorts | undefined;
  const { child, exited } = spawnEntry(options, (line, stream) => {
    lines.push(line);
    if (stream === "stderr") stderr.push(line);
    if (stream === "stdout" && ports === undefined) {
      const parsed = parseLog(line);
      if (parsed?.msg === "listening" && parsed.ports) ports = parsed.ports;
    }
    for (const watcher of watchers) watcher(line);
  });

  const waitForLine = (predicate: (line: string) => boolean, ms = timeoutMs) =>
    new Promise<string>((resolve, reject) => {
      const seen = lines.find(predicate);
      if (seen !== undefined) {
        resolve(seen);
        return;
      }
      const done = () => {
        clearTimeout(timer);
        watchers.delete(watch);
      };
      const watch = (line: string) => {
        if (predicate(line)) {
          done();
          resolve(line);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching line within ${ms} ms; output:\n${lines.join("\n")}`));
      }, ms);
      watchers.add(watch);
      void exited.then(({ code, signal }) => {
        if (!watchers.has(watch)) return;
        done();
        reject(new Error(`${options.entry} exited (${code ?? signal}) first; output:\n${lines.join("\n")}`));
      });
    });

  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGCONT");
      child.kill("SIGKILL");
    }
    await exited;
  };
  try {
    await waitForLine((line) => parseLog(line)?.msg === "listening");
    if (options.until) {
      const until = options.until;
      await waitForLine((line) => parseLog(line)?.msg === until);
    }
  } catch (error) {
    await kill();
    throw error;
  }
  return {
    process: child,
    ports: ports ?? {},
    lines,
    stderr,
    async stop(signal = "SIGTERM") {
      child.kill(signal);
      return exited;
    },
    kill,
    waitForExit: () => exited,
    waitForLine,
  };
}

/** Runs an entry to its exit (at most `timeoutMs`, then SIGKILL) and returns the exit and its output. */
export async function runToExit(
  options: StartOptions,
): Promise<ExitResult & { stdout: string; stderr: string }> {
  const out: Record<"stdout" | "stderr", string[]> = { stdout: [], stderr: [] };
  const { child, exited } = spawnEntry(options, (line, stream) => out[stream].push(line));
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const result = await exited;
  clearTimeout(timer);
  return { ...result, stdout: out.stdout.join("\n"), stderr: out.stderr.join("\n") };
}
