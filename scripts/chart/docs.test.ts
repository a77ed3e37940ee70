// The model directories the chart's docs and example values tell a user to set exist in the model-service image
// (which holds models/<name>/ for every bundled model): a copied command must not leave a pod in CrashLoopBackOff.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { REPO_ROOT } from "./helm.js";

const ciDir = join(REPO_ROOT, "charts/shadowmesh/ci");
const valuesDir = join(REPO_ROOT, "scripts/chart/values");
const FILES = [
  "README.md",
  "charts/shadowmesh/README.md",
  "charts/shadowmesh/values.yaml",
  "charts/shadowmesh/templates/NOTES.txt",
  "istio/README.md",
  "observability/README.md",
  ...readdirSync(ciDir).map((f) => join("charts/shadowmesh/ci", f)),
  ...readdirSync(valuesDir).map((f) => join("scripts/chart/values", f)),
];

/** `/app/models/<name>` paths in a text; placeholders such as `/app/models/<your-model>` are not names. */
function modelDirsIn(text: string): string[] {
  return [...text.matchAll(/\/app\/models\/([A-Za-z0-9][\w.-]*)/g)].map((m) => m[1] as string);
}

describe("model directories named in the chart's docs and values", () => {
  it("finds names and skips placeholders", () => {
    expect(modelDirsIn("--set x=/app/models/spam-v2 or /app/models/<next> and /app/models/spam-v9.")).toEqual(
      ["spam-v2", "spam-v9."],
    );
  });

  it.each(FILES)("%s names only bundled models", (file) => {
    const text = readFileSync(join(REPO_ROOT, file), "utf8");
    const missing = modelDirsIn(text)
      .map((name) => name.replace(/\.$/, ""))
      .filter((name) => !existsSync(join(REPO_ROOT, "models", name, "model.onnx")));
    expect(missing, `${file} names model directories the image does not hold`).toEqual([]);
  });
});

// metrics-service knows a candidate by the model name its records carry (model.json's `name`), and the chart passes
// each candidate's expected share under the candidate's `name`: the two must be the same, or the share, the
// dashboards' candidate and the rollout gates point at a candidate that never reports.
describe("candidates in the chart's values and examples", () => {
  const sets = [
    "charts/shadowmesh/values.yaml",
    ...readdirSync(ciDir).map((f) => join("charts/shadowmesh/ci", f)),
    ...readdirSync(valuesDir).map((f) => join("scripts/chart/values", f)),
  ].filter((file) => parse(readFileSync(join(REPO_ROOT, file), "utf8"))?.candidates);

  it("are listed somewhere (the check has something to check)", () => {
    expect(sets.length).toBeGreaterThanOrEqual(3);
  });

  it("sees a candidate named after another model, or a model the image does not hold", () => {
    expect(misnamed([{ name: "spam-v2", model: "/app/models/spam-v2" }])).toEqual([]);
    expect(misnamed([{ name: "spam-v3", model: "/app/models/spam-v2" }])).toEqual([
      "spam-v3: /app/models/spam-v2 serves the model spam-v2",
    ]);
    expect(misnamed([{ name: "x", model: "/app/models/nowhere" }])).toEqual([
      "x: /app/models/nowhere is not a bundled model",
    ]);
  });

  it.each(sets)("%s names each candidate after the model it serves", (file) => {
    const { candidates } = parse(readFileSync(join(REPO_ROOT, file), "utf8")) as {
      candidates: { name: string; model: string }[];
    };
    expect(misnamed(candidates)).toEqual([]);
  });
});

/** Candidates whose name is not the `name` in their model's model.json (or whose model is not bundled). */
function misnamed(candidates: { name: string; model: string }[]): string[] {
  return candidates
    .map((c) => {
      const manifest = join(REPO_ROOT, "models", c.model.replace(/^\/app\/models\//, ""), "model.json");
      if (!existsSync(manifest)) return `${c.name}: ${c.model} is not a bundled model`;
      const name = (JSON.parse(readFileSync(manifest, "utf8")) as { name: string }).name;
      return name === c.name ? undefined : `${c.name}: ${c.model} serves the model ${name}`;
    })
    .filter((problem): problem is string => problem !== undefined);
}
