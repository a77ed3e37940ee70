import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { descendants, freePorts, servicePids, startLauncher, waitGone } from "./launcher.js";
import { startLoad } from "./load.js";
import { PRIMARY, readRecords } from "./records.js";
import { runScenario, type Scenario, scenarios } from "./scenarios.js";

/**
 * The fault suite's core cases as assertions, short (the full run with figures is `npm run faults`): on the real
 * local mesh under steady load, a SIGKILLed shadow and a SIGKILLed metrics-service cost the primary path nothing and
 * are restarted; every acknowledged prediction is stored or counted as dropped; Ctrl-C to the real `npm start`
 * launcher under load loses no acknowledged prediction's record.
 */
const RUN = { rate: 20, preMs: 1500, postMs: 3000 };
const cases = scenarios({ stopSeconds: 3, metricsDownSeconds: 3, delayMs: 50 });

describe("faults on the local mesh (short)", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("shadow SIGKILL: no primary error, the shadow is restarted and is back in the comparison", async () => {
    const outcome = await runScenario(cases.shadowKill, RUN);
    expect(outcome.acknowledged).toBeGreaterThan(50);
    expect(outcome.primaryErrors, JSON.stringify(outcome.errorCodes)).toBe(0);
    expect(outcome.restarts.some((line) => /^\[shadow\] exited \(SIGKILL\)/.test(line))).toBe(true);
    expect(outcome.restarts.some((line) => /^\[shadow\] ready again \(restart 1/.test(line))).toBe(true);
    expect(outcome.recoveredMs).toBeDefined();
    // The killed shadow's calls reached the comparison as app-service's MIRROR records, not as silence.
    expect(outcome.shadowRecords.mirrorFailures).toBeGreaterThan(0);
    expect(outcome.unrecorded).toBe(0);
  }, 90_000);

  it("metrics-service SIGKILL: no primary error; every acknowledged prediction stored or counted as dropped", async () => {
    const killMetrics: Scenario = {
      name: "metrics-service SIGKILL",
      recovery: "pair",
      fault: async ({ mesh }) => {
        await mesh.kill("metrics", "SIGKILL");
        return { clearedAt: await mesh.whenReady("metrics", 60_000) };
      },
    };
    const outcome = await runScenario(killMetrics, RUN);
    expect(outcome.acknowledged).toBeGreaterThan(50);
    expect(outcome.primaryErrors, JSON.stringify(outcome.errorCodes)).toBe(0);
    expect(outcome.restarts.some((line) => /^\[metrics\] ready again/.test(line))).toBe(true);
    expect(Number.isNaN(outcome.droppedCounted)).toBe(false);
    expect(outcome.lost).toBe(0);
    expect(outcome.recoveredMs).toBeDefined();
  }, 90_000);

  it("Ctrl-C to `npm start` under load: every acknowledged prediction is recorded, every service stops", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "faults-ctrl-c-"));
    dirs.push(dataDir);
    const launcher = startLauncher({ ports: await freePorts(), dataDir });
    try {
      expect(await launcher.running(), launcher.output()).toBe(true);
      const services = servicePids(descendants(launcher.child.pid as number));
      const load = startLoad({
        baseUrl: `http://127.0.0.1:${launcher.ports.app}`,
        rate: RUN.rate,
        maxDurationMs: 30_000,
      });
      await vi.waitUntil(() => load.samples.filter((sample) => sample.ok).length >= 40, {
        timeout: 30_000,
        interval: 50,
      });
      launcher.child.kill("SIGINT");
      const { code } = await launcher.exited;
      const samples = await load.stop();
      expect(code).toBe(0);
      expect(await waitGone(services, 5000)).toEqual([]);
      const stored = new Set(
        readRecords(path.join(dataDir, "metrics"))
          .filter((record) => record.role === PRIMARY)
          .map((record) => record.requestId),
      );
      const acknowledged = samples.filter((sample) => sample.ok).map((sample) => sample.requestId as string);
      expect(acknowledged.length).toBeGreaterThanOrEqual(40);
      expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    } finally {
      launcher.child.kill("SIGKILL");
    }
  }, 120_000);
});
