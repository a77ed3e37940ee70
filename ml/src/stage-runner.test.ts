import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { StageCache } from "./cache.js";
import { type CachedStage, fmtSeconds, StageRunner } from "./stage-runner.js";

describe("the cached-stage helper", () => {
  const scratch = mkdtempSync(join(tmpdir(), "shadowmesh-stage-runner-"));
  const sourceRoot = join(scratch, "src");
  const cache = new StageCache(join(scratch, "cache"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  mkdirSync(sourceRoot, { recursive: true });
  writeFileSync(
    join(sourceRoot, "stage.ts"),
    'import { helper } from "./helper.js";\nexport const s = helper;\n',
  );
  writeFileSync(join(sourceRoot, "helper.ts"), "export const helper = 1;\n");

  /** Runs one cached stage with a fresh runner; returns its output, whether it ran, and the log. */
  async function runOnce(
    overrides: Partial<CachedStage<{ n: number }>> = {},
    options: { force?: boolean; rerun?: string[] } = {},
  ) {
    const lines: string[] = [];
    let ran = 0;
    let runDir = "";
    const runner = new StageRunner(cache, ["double"], {
      log: (line) => lines.push(line),
      sourceRoot,
      ...options,
    });
    const out = await runner.cached<{ n: number }>({
      name: "double",
      kind: "double",
      detail: "doubles its input",
      inputs: [21],
      sources: ["stage.ts"],
      config: [{ factor: 2 }],
      run: async (progress, dir) => {
        ran += 1;
        progress("halfway", 0.5);
        runDir = dir;
        return { n: 42 };
      },
      ...overrides,
    });
    // On a miss, the stage ran in its own cache entry's directory.
    if (ran > 0) expect(runDir).toBe(out.dir);
    return { out, ran, lines };
  }
  const keyOf = async (overrides: Partial<CachedStage<{ n: number }>> = {}) => {
    const probe = new StageRunner(new StageCache(join(scratch, "probe")), ["double"], {
      log: () => {},
      sourceRoot,
    });
    const { key } = await probe.cached<{ n: number }>({
      name: "double",
      kind: "double",
      detail: "",
      inputs: [21],
      sources: ["stage.ts"],
      config: [{ factor: 2 }],
      run: async () => ({ n: 0 }),
      ...overrides,
    });
    return key;
  };

  it("runs on a miss and stores; reads back on a hit without running", async () => {
    const first = await runOnce();
    expect(first).toMatchObject({ ran: 1, out: { value: { n: 42 }, cached: false } });
    expect(first.lines[0]).toBe("[1/1] double: doubles its input");
    expect(first.out.key).toBe(await keyOf());
    const second = await runOnce({ run: async () => ({ n: -1 }) });
    expect(second).toMatchObject({ ran: 0, out: { value: { n: 42 }, cached: true, key: first.out.key } });
    expect(second.lines[0]).toBe("[1/1] double: doubles its input (cached)");
  });

  it("keys on inputs, configuration, and every module the stage's source reaches", async () => {
    const base = await keyOf();
    expect(await keyOf({ inputs: [22] })).not.toBe(base);
    expect(await keyOf({ config: [{ factor: 3 }] })).not.toBe(base);
    writeFileSync(join(sourceRoot, "helper.ts"), "export const helper = 2;\n");
    const changed = await keyOf();
    writeFileSync(join(sourceRoot, "helper.ts"), "export const helper = 1;\n");
    expect(changed).not.toBe(base);
    expect(await keyOf()).toBe(base);
  });

  it("re-runs when forced, when its kind is named by --rerun, and when its entry is not valid JSON", async () => {
    const forced = await runOnce({}, { force: true });
    expect(forced.ran).toBe(1);
    expect((await runOnce({}, { rerun: ["double"] })).ran).toBe(1);
    expect((await runOnce({}, { rerun: ["train"] })).ran).toBe(0);
    writeFileSync(join(forced.out.dir, "output.json"), '{"n": 4');
    const repaired = await runOnce();
    expect(repaired).toMatchObject({ ran: 1, out: { value: { n: 42 } } });
    expect((await runOnce()).ran).toBe(0);
    expect(readdirSync(forced.out.dir)).toEqual(["output.json"]);
  });

  it("prints the pipeline ETA from the last run's timings once they are saved", async () => {
    const lines: string[] = [];
    const runner = new StageRunner(cache, ["a", "b"], { log: (l) => lines.push(l), sourceRoot });
    await runner.run("a", "first", async () => undefined);
    await runner.run("b", "second", async () => undefined);
    runner.saveTimings();
    const next: string[] = [];
    const again = new StageRunner(cache, ["a", "b"], { log: (l) => next.push(l), sourceRoot });
    await again.run("a", "first", async () => undefined);
    expect(lines[0]).toBe("[1/2] a: first");
    expect(next[0]).toMatch(/^\[1\/2\] a: first \(pipeline ETA \d+\.\d s, from the last run\)$/);
  });

  it("formats durations without a 60th second", () => {
    expect(fmtSeconds(59.96)).toBe("60.0 s");
    expect(fmtSeconds(119.6)).toBe("2 min 0 s");
    expect(fmtSeconds(554)).toBe("9 min 14 s");
  });
});
