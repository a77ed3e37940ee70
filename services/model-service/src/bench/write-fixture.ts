import { writeFixtureModel } from "../testing/fixture-model.js";

/** Writes the test fixture model to a directory, for the benchmark when no bundled model exists yet. */
const dir = process.argv[2];
if (!dir) {
  console.error("usage: write-fixture <dir>");
  process.exit(2);
}
await writeFixtureModel(dir);
