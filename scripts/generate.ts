import { run } from "./lib/run.js";

/**
 * `npm run generate`: regenerates gen/es from proto/ from scratch (buf.gen.yaml has `clean: true`) with the local
 * protoc-gen-es plugin. Commit the result; `npm test` fails when the committed code differs from a fresh generation.
 */
run("buf", ["format", "-w"]);
run("buf", ["generate"]);
console.log("generated gen/es from proto/");
