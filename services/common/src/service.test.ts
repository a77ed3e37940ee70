import { createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { createGrpcJsTransport } from "./grpc-transport.js";
import { createLogger } from "./logger.js";
import { createService, drainBudgetMs, type ServiceOptions, type ServiceParts } from "./service.js";
import { createTinyService } from "./testing/tiny-service.js";

const logger = createLogger("service-test", process.env.LOG_TESTS ? "debug" : "silent");

const options = (overrides: Partial<ServiceOptions> = {}): ServiceOptions => ({
  name: "fake",
  logger,
  registry: new Registry(),
  host: "127.0.0.1",
  metricsPort: 0,
  metricsPortSetting: "FAKE_METRICS_PORT",
  shutdownDelayMs: 30,
  shutdownTimeoutMs: 5000,
  flushTimeoutMs: 1000,
  ...overrides,
});

/** ServiceParts that record every call (with its argument) in order. */
function recordingParts(overrides: Partial<ServiceParts> = {}) {
  const calls: string[] = [];
  let serving = false;
  const parts: ServiceParts = {
    listen: async () => {
      calls.push("listen");
      return { grpc: 1234 };
    },
    start: async () => {
      calls.push("start");
      serving = true;
    },
    ready: () => serving,
    notServing: () => {
      calls.push("notServing");
      serving = false;
    },
    drain: async (ms) => {
      calls.push(`drain ${ms}`);
    },
    flush: async (ms) => {
      calls.push(`flush ${ms}`);
    },
    close: () => {
      calls.push("close");
    },
    reload: async (reason) => {
      calls.push(`reload ${reason}`);
      return "reloaded";
    },
    ...overrides,
  };
  return { parts, calls };
}

const readyz = async (port: number) => (await fetch(`http://127.0.0.1:${port}/readyz`)).status;

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()));
});

describe("createService", () => {
  it("listens (own ports + the ops server), becomes ready, and stops in the fixed order with the derived drain budget", async () => {
    const { parts, calls } = recordingParts();
    const service = createService(parts, options());
    stops.push(() => service.stop());
    const ports = await service.listen();
    expect(ports.grpc).toBe(1234);
    expect(ports.metrics).toBeGreaterThan(0);
    expect(await readyz(ports.metrics as number)).toBe(503);
    await service.ready();
    expect(await readyz(ports.metrics as number)).toBe(200);
    expect(await service.reload("SIGHUP")).toBe("reloaded");
    await service.stop();
    // 5000 − 30 delay − 1000 flush − 500 margin
    expect(drainBudgetMs(options())).toBe(3470);
    expect(calls).toEqual([
      "listen",
      "start",
      "reload SIGHUP",
      "notServing",
      "drain 3470",
      "flush 1000",
      "close",
    ]);
    await expect(fetch(`http://127.0.0.1:${ports.metrics}/readyz`)).rejects.toThrow();
  });

  it("answers not ready from the moment stop begins, before the parts say so", async () => {
    // The drain waits on a promise made up front: stop() may not have reached drain when readiness is checked
    // (on a loaded CI machine it had not), so releasing must work whether drain has started or not.
    let releaseDrain = () => {};
    const drained = new Promise<void>((resolve) => (releaseDrain = resolve));
    const { parts } = recordingParts({
      notServing: () => {}, // the part forgets to turn readiness off
      drain: () => drained,
    });
    const service = createService(parts, options({ shutdownDelayMs: 0 }));
    const { metrics } = await service.listen();
    await service.ready();
    expect(await readyz(metrics as number)).toBe(200);
    const stopping = service.stop();
    expect(await readyz(metrics as number)).toBe(503);
    releaseDrain();
    await stopping;
  });

  it("stop is idempotent: every call returns the same promise and runs each step once", async () => {
    const { parts, calls } = recordingParts();
    const service = createService(parts, options());
    await service.listen();
    await service.ready();
    const first = service.stop();
    const second = service.stop();
    expect(second).toBe(first);
    await Promise.all([first, second, service.stop()]);
    expect(calls.filter((call) => call === "close")).toHaveLength(1);
    expect(calls.filter((call) => call.startsWith("drain"))).toHaveLength(1);
  });

  it("stop during start: the start finishes first, then NOT_SERVING turns off what it turned on", async () => {
    let finishStart = () => {};
    const { parts, calls } = recordingParts({
      start: () =>
        new Promise<void>((resolve) => {
          finishStart = () => {
            calls.push("start done");
            resolve();
          };
        }),
    });
    const service = createService(parts, options());
    await service.listen();
    const ready = service.ready();
    const stopped = service.stop();
    // stop() awaits the pending start: nothing of the shutdown runs however many turns pass before it settles.
    for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual(["listen"]);
    finishStart();
    await ready;
    await stopped;
    expect(calls).toEqual(["listen", "start done", "notServing", "drain 3470", "flush 1000", "close"]);
    await expect(service.ready()).resolves.toBeUndefined(); // the same (settled) start
  });

  it("a start that never settles does not hold the shutdown beyond the drain budget", async () => {
    const { parts, calls } = recordingParts({ start: () => new Promise<void>(() => {}) });
    const service = createService(
      parts,
      options({ shutdownTimeoutMs: 700, shutdownDelayMs: 0, flushTimeoutMs: 0 }),
    );
    await service.listen();
    void service.ready();
    await service.stop();
    expect(calls).toEqual(["listen", "notServing", "drain 200", "flush 0", "close"]);
  });

  it("ready() after stop rejects; a failing step does not stop the later ones", async () => {
    const { parts, calls } = recordingParts({
      notServing: () => {
        calls.push("notServing");
        throw new Error("health is broken");
      },
      drain: async () => {
        calls.push("drain");
        throw new Error("drain failed");
      },
      flush: () => Promise.reject(new Error("flush failed")),
    });
    const service = createService(parts, options());
    await service.listen();
    await service.stop();
    expect(calls).toEqual(["listen", "notServing", "drain", "close"]);
    await expect(service.ready()).rejects.toThrow(/stopping/);
  });

  it("a metrics port in use is a ListenError naming the port and its setting", async () => {
    const first = createService(recordingParts().parts, options());
    stops.push(() => first.stop());
    const { metrics } = await first.listen();
    const second = createService(recordingParts().parts, options({ metricsPort: metrics as number }));
    stops.push(() => second.stop());
    await expect(second.listen()).rejects.toThrow(
      `port ${metrics} (FAKE_METRICS_PORT) on 127.0.0.1 is in use`,
    );
  });
});

describe("a fourth service in twenty lines (testing/tiny-service.ts)", () => {
  it("serves health on grpc-js, /readyz on the ops server, and goes NOT_SERVING then away on stop", async () => {
    const service = createTinyService(
      { host: "127.0.0.1", grpcPort: 0, metricsPort: 0, shutdownDelayMs: 300, shutdownTimeoutMs: 3000 },
      logger,
    );
    stops.push(() => service.stop());
    const ports = await service.listen();
    const transport = createGrpcJsTransport({ address: `127.0.0.1:${ports.grpc}` });
    const health = createClient(Health, transport);
    try {
      expect((await health.check({ service: "" })).status).toBe(
        HealthCheckResponse_ServingStatus.NOT_SERVING,
      );
      await service.ready();
      expect((await health.check({ service: "tiny.v1.Tiny" })).status).toBe(
        HealthCheckResponse_ServingStatus.SERVING,
      );
      expect(await readyz(ports.metrics as number)).toBe(200);
      const stopped = service.stop();
      // During the shutdown delay the port is still open and says NOT_SERVING.
      expect((await health.check({ service: "" })).status).toBe(
        HealthCheckResponse_ServingStatus.NOT_SERVING,
      );
      await stopped;
      await expect(health.check({ service: "" }, { timeoutMs: 2000 })).rejects.toThrow();
    } finally {
      transport.close();
    }
  });
});
