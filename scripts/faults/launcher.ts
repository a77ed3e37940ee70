import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { freePortsFor } from "@shadowmesh/common";
import { vi } from "vitest";
import { DEFAULT_PORTS, type MeshPorts, ROOT } from "../lib/mesh.js";

/**
 * The real `npm start` launcher (tsx scripts/start.ts, minus install and build) on free ports, for the tests and
 * the fault suite that must treat it as a user would: Ctrl-C, SIGHUP, kill -9, a second start.
 */
export interface Launcher {
  readonly child: ChildProcess;
  readonly ports: MeshPorts;
  readonly dataDir: string;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves when it has printed the table (true), or exited first (false); bounded by `timeoutMs`. */
  running(timeoutMs?: number): Promise<boolean>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function portEnv(ports: MeshPorts): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of Object.keys(DEFAULT_PORTS) as (keyof MeshPorts)[]) {
    env[`SHADOWMESH_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_PORT`] = String(ports[key]);
  }
  return env;
}

export async function freePorts(): Promise<MeshPorts> {
  return freePortsFor(Object.keys(DEFAULT_PORTS) as (keyof MeshPorts)[]);
}

export function startLauncher(options: {
  ports: MeshPorts;
  dataDir: string;
  /** Own process group (so that a test can signal the group, as a closing terminal does). */
  detached?: boolean;
  env?: Record<string, string>;
}): Launcher {
  let output = "";
  const child = spawn(path.join(ROOT, "node_modules/.bin/tsx"), ["scripts/start.ts"], {
    cwd: ROOT,
    env: { ...process.env, ...portEnv(options.ports), SHADOWMESH_DATA_DIR: options.dataDir, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
  });
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    ports: options.ports,
    dataDir: options.dataDir,
    output: () => output,
    exited,
    running: async (timeoutMs = 120_000) => {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until && child.exitCode === null && child.signalCode === null) {
        if (output.includes("Press Ctrl-C to stop.")) {
          return true;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return output.includes("Press Ctrl-C to stop.");
    },
  };
}

/** The parent pid of `pid` (from /proc), or undefined if it is gone. */
export function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // pid (comm) state ppid …: comm may contain spaces and parentheses, so split after the last ")".
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live process (not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Every live descendant of `pid`, found through /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    const parent = parentOf(Number(entry));
    if (parent !== undefined) {
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift() as number;
    for (const child of children.get(next) ?? []) {
      if (alive(child)) {
        found.push(child);
      }
      queue.push(child);
    }
  }
  return found;
}

/** The command line of `pid` ("" if gone). */
export function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

/** The service processes (…/dist/main.js) among `pids`. */
export function servicePids(pids: readonly number[]): number[] {
  return pids.filter((pid) => /services\/[a-z-]+\/dist\/main\.js/.test(commandOf(pid)));
}

/** Waits (vi.waitUntil, bounded by `timeoutMs`) until none of `pids` is alive; resolves with those still alive. */
export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  await vi.waitUntil(() => !pids.some(alive), { timeout: timeoutMs, interval: 100 }).catch(() => undefined);
  return pids.filter(alive);
}
