/**
 * `npm run train` — the whole pipeline; `npm run train -- --model spam-v2` — one model.
 * Options: --model <name> (repeatable), --force (ignore the stage cache), --models-dir <dir>, --cache-dir <dir>.
 */
import { parseArgs } from "node:util";
import { MODEL_SPECS } from "./model-specs.js";
import { runPipeline } from "./pipeline.js";

const { values } = parseArgs({
  options: {
    model: { type: "string", multiple: true },
    force: { type: "boolean", default: false },
    "models-dir": { type: "string" },
    "cache-dir": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  console.log(`usage: npm run train [-- --model <${MODEL_SPECS.map((s) => s.name).join("|")}>] [--force]`);
  process.exit(0);
}

const result = await runPipeline({
  models: values.model,
  force: values.force,
  modelsDir: values["models-dir"],
  cacheDir: values["cache-dir"],
});
process.exit(result.passed ? 0 : 1);
