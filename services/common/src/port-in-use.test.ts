import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./free-ports.js";
import { ListenError, listenOn, listenProblem } from "./listen.js";

/**
 * A port in use gives one line in every service: each real service process (its main.ts), started with one of its
 * ports already taken, prints exactly `<service>: port <n> (<SETTING>) on <host> is in use` on stderr — no stack
 * trace, no grpc-js log line — and exits 1.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

interface Outcome {
  code: number | null;
  stderr: string;
}

function runToExit(main: string, env: Record<string, string>): Promise<Outcome> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, main)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve) =>
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    }),
  );
}

let holder: net.Server;
let taken: number;
let dataDir: string;

beforeAll(async () => {
  holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  taken = (holder.address() as net.AddressInfo).port;
  dataDir = await mkdtemp(path.join(tmpdir(), "port-in-use-"));
});

afterAll(async () => {
  await new Promise((resolve) => holder?.close(resolve));
  await rm(dataDir, { recursive: true, force: true });
});

const services = [
  {
    name: "model-service",
    main: "services/model-service/src/main.ts",
    ports: ["MODEL_SERVICE_GRPC_PORT", "MODEL_SERVICE_METRICS_PORT"],
    env: (): Record<string, string> => ({
      MODEL_SERVICE_METRICS_SERVICE_ADDRESS: "",
      MODEL_SERVICE_HOST: "127.0.0.1",
    }),
  },
  {
    name: "metrics-service",
    main: "services/metrics-service/src/main.ts",
    ports: ["METRICS_SERVICE_GRPC_PORT", "METRICS_SERVICE_METRICS_PORT"],
    env: (): Record<string, string> => ({
      METRICS_SERVICE_DATA_DIR: dataDir,
      METRICS_SERVICE_HOST: "127.0.0.1",
    }),
  },
  {
    name: "app-service",
    main: "services/app-service/src/main.ts",
    ports: ["APP_SERVICE_PORT", "APP_SERVICE_METRICS_PORT"],
    env: (): Record<string, string> => ({ APP_SERVICE_HOST: "127.0.0.1" }),
  },
];

describe.each(services)("$name with a port in use", ({ name, main, ports, env }) => {
  it.each(ports)("%s: one line naming the port, the setting and the host, exit 1", async (setting) => {
    const other = String(await freePort());
    const portEnv = Object.fromEntries(ports.map((key) => [key, key === setting ? String(taken) : other]));
    const { code, stderr } = await runToExit(main, { ...env(), ...portEnv });
    expect(stderr).toBe(`${name}: port ${taken} (${setting}) on 127.0.0.1 is in use\n`);
    expect(code).toBe(1);
  });
});

describe("listenOn", () => {
  const target = { setting: "X_PORT", host: "127.0.0.1", port: 80 };

  it("turns Node's and grpc-js's listen errors into one readable line", async () => {
    const nodeError = Object.assign(new Error("listen EACCES: permission denied 127.0.0.1:80"), {
      code: "EACCES",
    });
    await expect(listenOn(target, () => Promise.reject(nodeError))).rejects.toThrow(
      new ListenError(
        target,
        "EACCES",
        "port 80 (X_PORT) on 127.0.0.1: permission denied (ports below 1024 need privileges)",
      ),
    );
    const grpcError = new Error(
      "No address added out of total 1 resolved errors: [listen EADDRNOTAVAIL: address not available 10.1.1.1]",
    );
    expect(listenProblem({ ...target, host: "10.1.1.1" }, grpcError)).toBe(
      "cannot listen on 10.1.1.1 (port 80, X_PORT): the address is not on this machine",
    );
    expect(listenProblem(target, new Error("something\nelse"))).toBe(
      "cannot listen on port 80 (X_PORT) on 127.0.0.1: something else",
    );
  });

  it("passes the result through", async () => {
    expect(await listenOn(target, async () => 42)).toBe(42);
  });
});
