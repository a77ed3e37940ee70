import { defineConfig } from "vitest/config";

// One test run for the whole repository. Node-side tests live next to the code they test (`foo.ts` + `foo.test.ts`);
// the web app brings its own project (jsdom) from web/vite.config.ts.
export default defineConfig({
  test: {
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
