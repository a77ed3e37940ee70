/**
 * `npm run train` — the whole pipeline; `npm run train -- --model spam-v2` — one model.
 * Options: --model <name> (repeatable), --force (ignore the whole stage cache), --rerun <parse|split|train|evaluate>
 * (ignore the cache of one kind of stage, e.g. `--rerun evaluate` to measure latency again), --models-dir, --cache-dir.
 */
import { parseArgs } from "node:util";
import { MODEL_SPECS } from "./model-specs.js";
import { runPipeline } from "./pipeline.js";

const { values } = parseArgs({
  options: {
    model: { type: "string", multiple: true },
    force: { type: "boolean", default: false },
    rerun: { type: "string", multiple: true },
    "models-dir": { type: "string" },
    "cache-dir": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  console.log(
    `usage: npm run train [-- --model <${MODEL_SPECS.map((s) => s.name).join("|")}>] [--force] [--rerun <parse|split|train|evaluate>]`,
  );
  process.exit(0);
}

const result = await runPipeline({
  models: values.model,
  force: values.force,
  rerun: values.rerun,
  modelsDir: values["models-dir"],
  cacheDir: values["cache-dir"],
});
process.exit(result.passed ? 0 : 1);
