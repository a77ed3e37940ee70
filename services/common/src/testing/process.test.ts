import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";
import { describe, expect, it } from "vitest";
import { createGrpcJsTransport } from "../grpc-transport.js";
import { runToExit, startService } from "./process.js";

/** The process harness against the tiny service's main (runService end to end). */
const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), "tiny-main.ts");

describe("startService + runService", () => {
  it("one listening line with the bound ports; SIGHUP reloads; SIGTERM: NOT_SERVING, stopped, exit 0", async () => {
    const child = await startService({ entry: ENTRY, env: { TINY_SHUTDOWN_DELAY_MS: "400" } });
    try {
      expect(Object.keys(child.ports).sort()).toEqual(["grpc", "metrics"]);
      const listening = child.lines.filter((line) => line.includes('"msg":"listening"'));
      expect(listening).toHaveLength(1);
      expect(JSON.parse(listening[0] as string).ports).toEqual(child.ports);
      const ready = async () => (await fetch(`http://127.0.0.1:${child.ports.metrics}/readyz`)).status;
      await expect.poll(ready, { timeout: 10_000 }).toBe(200);
      const transport = createGrpcJsTransport({ address: `127.0.0.1:${child.ports.grpc}` });
      try {
        const health = createClient(Health, transport);
        expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
        child.process.kill("SIGHUP");
        await child.waitForLine((line) => line.includes('"reason":"SIGHUP"') && line.includes('"reloaded"'));
        const exit = child.stop("SIGTERM");
        // During the shutdown delay: still answering, NOT_SERVING.
        await expect
          .poll(async () => (await health.check({})).status, { timeout: 5000, interval: 20 })
          .toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
        expect(await exit).toEqual({ code: 0, signal: null });
      } finally {
        transport.close();
      }
      expect(child.lines.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
    } finally {
      await child.kill();
    }
  });

  it("a port in use: one line naming the port and its setting, exit 1", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const result = await runToExit({ entry: ENTRY, env: { TINY_METRICS_PORT: String(port) } });
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`tiny: port ${port} (TINY_METRICS_PORT) on 127.0.0.1 is in use`);
    } finally {
      blocker.close();
    }
  });

  it("a process that exits before listening (a bad setting: exit 2, one line) fails the start with its output", async () => {
    await expect(startService({ entry: ENTRY, env: { TINY_SHUTDOWN_TIMEOUT_MS: "0" } })).rejects.toThrow(
      /exited \(2\) first[\s\S]*TINY_SHUTDOWN_TIMEOUT_MS must be an integer ≥ 1/,
    );
  });

  it("SIGTERM during a slow start: the start settles, then the shutdown runs; exit 0, nothing on stderr", async () => {
    const child = await startService({ entry: ENTRY, env: { TINY_START_MS: "1500" } });
    try {
      expect(await child.stop("SIGTERM")).toEqual({ code: 0, signal: null });
      expect(child.lines.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
      expect(child.stderr).toEqual([]);
    } finally {
      await child.kill();
    }
  });

  it("kill() ends a stopped (SIGSTOP) process", async () => {
    const child = await startService({ entry: ENTRY });
    child.process.kill("SIGSTOP");
    await child.kill();
    expect((await child.waitForExit()).signal).toBe("SIGKILL");
  });
});
