import { readFileSync } from "node:fs";
import net from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { freePorts, freePortsFor } from "./free-ports.js";

const ephemeralLow = Number(
  readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0],
);

const held: net.Server[] = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  await Promise.all(held.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

function hold(port: number): Promise<void> {
  const server = net.createServer();
  held.push(server);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
}

describe("freePorts", () => {
  it("gives distinct ports in one set, all bindable, from this worker's block below the ephemeral range", async () => {
    for (let round = 0; round < 20; round++) {
      const ports = await freePorts(8);
      expect(new Set(ports).size).toBe(8);
      for (const port of ports) {
        expect(port).toBeLessThan(ephemeralLow);
        await hold(port); // throws EADDRINUSE if the port was not free
      }
      await Promise.all(held.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
    }
  });

  it("two workers never share a block", async () => {
    vi.stubEnv("VITEST_POOL_ID", "1");
    const first = await freePorts(50);
    vi.stubEnv("VITEST_POOL_ID", "2");
    const second = await freePorts(50);
    const lowSecond = Math.min(...second);
    expect(Math.max(...first)).toBeLessThan(Math.floor(lowSecond / 1000) * 1000);
  });

  it("skips a port someone else holds", async () => {
    const [next] = await freePorts(1);
    // The walk goes on from where it stopped: hold the next few ports, and none of them may be handed out.
    const taken: number[] = [];
    for (let port = (next as number) + 1; taken.length < 3 && port < ephemeralLow; port++) {
      await hold(port).then(
        () => taken.push(port),
        () => {},
      );
    }
    const ports = await freePorts(5);
    for (const port of taken) {
      expect(ports).not.toContain(port);
    }
  });

  it("outside vitest the kernel chooses (ephemeral range), still all different", async () => {
    vi.stubEnv("VITEST_POOL_ID", "");
    const ports = await freePorts(8);
    expect(new Set(ports).size).toBe(8);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(ephemeralLow);
    }
  });

  it("freePortsFor names them", async () => {
    const ports = await freePortsFor(["grpc", "metrics"]);
    expect(Object.keys(ports)).toEqual(["grpc", "metrics"]);
    expect(ports.grpc).not.toBe(ports.metrics);
  });
});
