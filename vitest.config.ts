import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The files that take longest (measured on the 2-core machine: the full retrain 75–190 s, the fault suite, the
 * model-service and `npm start` process tests 25–50 s each). They start first, so the other worker works through the
 * many short files beside them instead of one of them running alone at the end. Vitest orders by the durations of
 * the last run when it has them, but a fresh clone (CI) has none and it then starts the largest files first, which
 * put the retrain last. A stale entry here costs only time, never a result.
 */
const LONGEST_FIRST = [
  "ml/src/pipeline.test.ts",
  "services/model-service/src/process.test.ts",
  "scripts/faults/core.test.ts",
  "scripts/start.test.ts",
  "scripts/images/production-image.test.ts",
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification) => {
      const index = LONGEST_FIRST.findIndex((suffix) => file.moduleId.endsWith(`/${suffix}`));
      return index === -1 ? LONGEST_FIRST.length : index;
    };
    return sorted
      .map((file, order) => ({ file, order }))
      .sort((a, b) => rank(a.file) - rank(b.file) || a.order - b.order)
      .map(({ file }) => file);
  }
}

// One test run for the whole repository. Node-side tests live next to the code they test (`foo.ts` + `foo.test.ts`);
// the web app brings its own project (jsdom) from web/vite.config.ts.
export default defineConfig({
  test: {
    // Vitest's default is one worker fewer than the CPUs: one worker on a 2-core machine. Most long tests wait on
    // child processes and sockets, so two workers finish the suite sooner there (measured: 465 s → 306 s of vitest);
    // on larger machines this is vitest's default.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    sequence: { sequencer: LongestFirst },
    projects: [
      "web/vite.config.ts",
      {
        test: {
          name: "node",
          environment: "node",
          include: ["services/*/src/**/*.test.ts", "ml/src/**/*.test.ts", "scripts/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
