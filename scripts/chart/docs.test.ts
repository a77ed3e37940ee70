// The model directories the chart's docs and example values tell a user to set exist in the model-service image
// (which holds models/<name>/ for every bundled model): a copied command must not leave a pod in CrashLoopBackOff.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
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
