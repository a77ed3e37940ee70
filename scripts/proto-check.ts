import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./lib/mesh.js";
import { capture, run } from "./lib/run.js";

/**
 * The contract checks of `npm test`:
 *  1. buf lint (STANDARD + COMMENTS), 2. buf format (no diff), 3. buf breaking against the main branch,
 *  4. generated-code drift: a fresh generation into a temporary folder must equal the committed gen/es.
 */

console.log("▸ buf lint");
run("buf", ["lint"]);

console.log("▸ buf format");
run("buf", ["format", "-d", "--exit-code"]);

console.log("▸ buf breaking against main");
const hasMain = capture("git", ["rev-parse", "--verify", "--quiet", "refs/heads/main"]).status === 0;
if (hasMain) {
  run("buf", ["breaking", "--against", `${ROOT}/.git#branch=main,subdir=proto`]);
} else {
  console.log("  skipped: this clone has no main branch yet, so there is nothing to compare against");
}

console.log("▸ generated code is up to date");
const fresh = mkdtempSync(path.join(os.tmpdir(), "shadowmesh-gen-"));
try {
  const template = JSON.stringify({
    version: "v2",
    clean: true,
    inputs: [{ directory: "proto" }],
    plugins: [
      { local: "protoc-gen-es", out: path.join(fresh, "es"), opt: ["target=js+dts", "import_extension=js"] },
    ],
  });
  run("buf", ["generate", "--template", template]);
  const committed = path.join(ROOT, "gen", "es");
  const listing = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const full = path.join(dir, name);
      return statSync(full).isDirectory() ? listing(full).map((child) => path.join(name, child)) : [name];
    });
  const want = listing(path.join(fresh, "es")).sort();
  const have = listing(committed).sort();
  const problems = [
    ...want.filter((file) => !have.includes(file)).map((file) => `missing: gen/es/${file}`),
    ...have.filter((file) => !want.includes(file)).map((file) => `stale: gen/es/${file}`),
    ...want
      .filter((file) => have.includes(file))
      .filter(
        (file) =>
          !readFileSync(path.join(fresh, "es", file)).equals(readFileSync(path.join(committed, file))),
      )
      .map((file) => `differs: gen/es/${file}`),
  ];
  if (problems.length > 0) {
    console.error(
      `✗ gen/es is out of date with proto/ — run \`npm run generate\` and commit:\n  ${problems.join("\n  ")}`,
    );
    process.exit(1);
  }
  console.log(`  ${want.length} generated files match`);
} finally {
  rmSync(fresh, { recursive: true, force: true });
}
