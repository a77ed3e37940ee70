import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "../config.js";

/** The built service, as `npm start` and the mesh run it. */
export const MAIN_JS = path.join(REPO_ROOT, "services/metrics-service/dist/main.js");

export interface ChildService {
  child: ChildProcess;
  grpcPort: number;
  metricsPort: number;
  /** Everything the process printed so far. */
  output(): string;
  /** Waits for the process to exit. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts metrics-service as a real child process on free ports (port 0; the chosen ports are read from its
 * "listening" log line) and resolves once it listens. Rejects if it exits first or stays silent for `timeoutMs`.
 */
export function startChildService(env: Record<string, string>, timeoutMs = 30_000): Promise<ChildService> {
  if (!existsSync(MAIN_JS)) {
    throw new Error(`${MAIN_JS} does not exist: run \`npx tsc -b tsconfig.json\` first`);
  }
  const child = spawn(process.execPath, [MAIN_JS], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      METRICS_SERVICE_HOST: "127.0.0.1",
      METRICS_SERVICE_GRPC_PORT: "0",
      METRICS_SERVICE_METRICS_PORT: "0",
      METRICS_SERVICE_LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`metrics-service did not start within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      for (const line of output.split("\n")) {
        if (!line.includes('"metrics-service listening"')) {
          continue;
        }
        const { grpcPort, metricsPort } = JSON.parse(line) as { grpcPort: number; metricsPort: number };
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        child.stdout?.on("data", (more: Buffer) => (output += more.toString("utf8")));
        resolve({ child, grpcPort, metricsPort, output: () => output, exited: () => exit });
        return;
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    void exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`metrics-service exited (${code ?? signal}) before it listened:\n${output}`));
    });
  });
}

/** Runs a command to completion in the repository root and collects its exit code and output. */
export function runToEnd(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}
