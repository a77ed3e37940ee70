import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { type ExitResult, runToExit, type ServiceProcess, startService } from "@shadowmesh/common/testing";
import { REPO_ROOT } from "../config.js";

/** The built service, as `npm start` and the mesh run it. */
export const MAIN_JS = path.join(REPO_ROOT, "services/metrics-service/dist/main.js");

export interface ChildService {
  /** The common process harness's handle (lines, stop, kill, waitForLine). */
  service: ServiceProcess;
  child: ChildProcess;
  grpcPort: number;
  metricsPort: number;
  /** Everything the process printed so far. */
  output(): string;
  /** Waits for the process to exit. */
  exited(): Promise<ExitResult>;
}

function requireBuilt(): void {
  if (!existsSync(MAIN_JS)) {
    throw new Error(`${MAIN_JS} does not exist: run \`npx tsc -b tsconfig.json\` first`);
  }
}

/** The environment every process test starts from: 127.0.0.1, free ports (0), info logs. */
const BASE_ENV = {
  METRICS_SERVICE_HOST: "127.0.0.1",
  METRICS_SERVICE_GRPC_PORT: "0",
  METRICS_SERVICE_METRICS_PORT: "0",
  METRICS_SERVICE_LOG_LEVEL: "info",
};

/**
 * Starts the built metrics-service as a real child process on free ports through the common process harness
 * (`startService`: the ports come from its "listening" line) and resolves once it serves (its "serving" line).
 * Rejects if it exits first or stays silent for `timeoutMs`; the process is killed when the test process exits.
 */
export async function startChildService(
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ChildService> {
  requireBuilt();
  const service = await startService({
    entry: MAIN_JS,
    cwd: REPO_ROOT,
    env: { ...BASE_ENV, ...env },
    timeoutMs,
    until: "serving",
  });
  const { grpc, metrics } = service.ports;
  if (grpc === undefined || metrics === undefined) {
    await service.kill();
    throw new Error(
      `metrics-service listened without its grpc and metrics ports:\n${service.lines.join("\n")}`,
    );
  }
  return {
    service,
    child: service.process,
    grpcPort: grpc,
    metricsPort: metrics,
    output: () => service.lines.join("\n"),
    exited: () => service.waitForExit(),
  };
}

/** Runs the built metrics-service with `args` to its exit (common `runToExit`, at most `timeoutMs`). */
export function runMain(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000) {
  requireBuilt();
  return runToExit({ entry: MAIN_JS, args, cwd: REPO_ROOT, env: { ...BASE_ENV, ...env }, timeoutMs });
}

/**
 * Runs a Node script (or `process.execPath` with a script as the first argument) to completion in the repository
 * root through the common `runToExit`, and collects its exit code and output (lines joined by "\n").
 */
export async function runToEnd(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [entry, rest] = command === process.execPath ? [args[0] ?? "", args.slice(1)] : [command, args];
  const { code, stdout, stderr } = await runToExit({ entry, args: rest, cwd: REPO_ROOT, env });
  return { code, stdout, stderr };
}
