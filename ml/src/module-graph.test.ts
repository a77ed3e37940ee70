import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { moduleGraphHash } from "./cache.js";
import { allModules, dependenciesOf, findImportCycle, moduleGraph } from "./module-graph.js";

describe("ml/src's import graph", () => {
  it("has no import cycle (type-only imports included)", () => {
    expect(findImportCycle()).toBeUndefined();
  });

  it("resolves every relative import and child script to a module that exists", () => {
    const modules = new Set(allModules());
    for (const file of modules) {
      for (const dep of dependenciesOf(file)) expect(modules.has(dep), `${file} → ${dep}`).toBe(true);
    }
  });

  it("derives each stage's sources from its entry module: imports, type imports, and scripts run by runTsChild", () => {
    const train = moduleGraph(["stages/train.ts"]);
    // train-child.ts is started as a process (runTsChild), not imported; it pulls in the whole trainer.
    for (const file of [
      "stages/train.ts",
      "train-child.ts",
      "train-model.ts",
      "classifier.ts",
      "features.ts",
      "text-ops.ts",
      "train.ts",
      "metrics.ts",
      "onnx-export.ts",
      "rng.ts",
      "model-specs.ts",
      "constants.ts",
    ]) {
      expect(train, file).toContain(file);
    }
    expect(moduleGraph(["evaluate.ts"])).toEqual(
      expect.arrayContaining(["bench-child.ts", "onnx-inference.ts"]),
    );
    expect(moduleGraph(["stages/parse.ts"])).toEqual(
      expect.arrayContaining(["parse-message.ts", "corpus.ts", "rng.ts", "constants.ts"]),
    );
    // The parse stage does not depend on the trainer: a model change must not re-parse the corpus.
    expect(moduleGraph(["stages/parse.ts"])).not.toContain("model-specs.ts");
  });
});

describe("the module graph on a scratch tree", () => {
  const root = mkdtempSync(join(tmpdir(), "shadowmesh-module-graph-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const write = (file: string, text: string) => {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
  };

  it("finds a cycle, including one closed by a type-only import", () => {
    write("a.ts", 'import { b } from "./b.js";\nexport const a = b;\n');
    write("b.ts", 'import type { C } from "./sub/c.js";\nexport const b = 1 as unknown as C;\n');
    write("sub/c.ts", 'import type { a } from "../a.js";\nexport type C = typeof a;\n');
    expect(findImportCycle(root)).toEqual(["a.ts", "b.ts", "sub/c.ts", "a.ts"]);
    write("sub/c.ts", "export type C = number;\n");
    expect(findImportCycle(root)).toBeUndefined();
  });

  it("changes a stage's source hash when a module it reaches only indirectly changes", () => {
    write(
      "stage.ts",
      'import { helper } from "./helper.js";\nrunTsChild("child.ts", []);\nexport const s = helper;\n',
    );
    write("helper.ts", "export const helper = 1;\n");
    write("child.ts", 'export { helper } from "./deep.js";\n');
    write("deep.ts", "export const helper = 2;\n");
    expect(moduleGraph(["stage.ts"], root)).toEqual(["child.ts", "deep.ts", "helper.ts", "stage.ts"]);
    const before = moduleGraphHash(["stage.ts"], root);
    write("deep.ts", "export const helper = 3;\n");
    expect(moduleGraphHash(["stage.ts"], root)).not.toBe(before);
    write("unrelated.ts", "export const x = 1;\n");
    const after = moduleGraphHash(["stage.ts"], root);
    write("unrelated.ts", "export const x = 2;\n");
    expect(moduleGraphHash(["stage.ts"], root)).toBe(after);
  });
});
