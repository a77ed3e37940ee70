import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type Outcome, runScenario, scenarios } from "./faults/scenarios.js";
import { ROOT } from "./lib/mesh.js";

/**
 * `npm run faults`: the fault suite. Each scenario runs on a fresh local mesh (the four real services, supervised
 * as under `npm start`) under steady bounded load through app-service, and the table compares it with a control run
 * of the same length. `--quick` shortens every phase (a smoke run); `--readme` writes the table into the root
 * README's "Reliability" section. Targets (issue 11): shadow faults → 0 primary errors and primary p99 ≤ 1.10×
 * control; metrics-service down → 0 primary errors and every acknowledged prediction either stored or counted as
 * dropped; primary restart → answering again within 2 s of being ready; clean Ctrl-C → 0 acknowledged predictions
 * unrecorded.
 */

const quick = process.argv.includes("--quick");
const writeReadme = process.argv.includes("--readme");
const rate = Number(process.env.FAULTS_RATE ?? (quick ? 20 : 40));
const options = {
  rate,
  preMs: quick ? 2000 : 5000,
  postMs: quick ? 4000 : 10_000,
  log: (line: string) => console.log(line),
};
const stopSeconds = quick ? 5 : 20;
const metricsDownSeconds = quick ? 5 : 15;

const outcomes: Outcome[] = [];
const run = async (scenario: Parameters<typeof runScenario>[0]) => {
  console.log(`▶ ${scenario.name}`);
  const outcome = await runScenario(scenario, options);
  outcomes.push(outcome);
  console.log(
    `  ${outcome.calls} calls, ${outcome.primaryErrors} errors, p50 ${outcome.p50} ms, p99 ${outcome.p99} ms, unrecorded ${outcome.unrecorded}, recovered ${outcome.recoveredMs ?? "-"} ms`,
  );
  return outcome;
};

const started = Date.now();
const first = scenarios({ stopSeconds, metricsDownSeconds, delayMs: 0 });
// Two control runs, first and last (the first one also warms the machine up); ratios are against their mean.
const control1 = await run({ ...first.control, name: "control, first (no fault)" });
const delayMs = Math.max(20, Math.round(9 * control1.p50));
const all = scenarios({ stopSeconds, metricsDownSeconds, delayMs });
for (const scenario of [
  all.shadowKill,
  all.shadowStop,
  all.shadowDelay,
  all.shadowAbort,
  all.metricsDown,
  all.primaryRestart,
  all.ctrlC,
]) {
  await run(scenario);
}
const control2 = await run({ ...first.control, name: "control, last (no fault)" });
const control = {
  p50: (control1.p50 + control2.p50) / 2,
  p99: (control1.p99 + control2.p99) / 2,
};

const ratio = (value: number, base: number) => (base > 0 ? `${(value / base).toFixed(2)}×` : "-");
const seconds = (ms: number | undefined) =>
  ms === undefined ? "never" : ms <= 0 ? "at once (≤ 0 s)" : `${(ms / 1000).toFixed(1)} s`;

function verdict(outcome: Outcome): string {
  const p99Ok = outcome.p99 <= 1.1 * control.p99;
  if (outcome === control1 || outcome === control2) {
    return "baseline";
  }
  if (outcome.name.startsWith("shadow")) {
    return outcome.primaryErrors === 0 && p99Ok
      ? "✅"
      : outcome.primaryErrors === 0
        ? `⚠️ 0 errors; p99 ${ratio(outcome.p99, control.p99)}`
        : "❌";
  }
  if (outcome.name.startsWith("metrics-service")) {
    return outcome.primaryErrors === 0 && outcome.lost === 0 ? "✅" : "❌";
  }
  if (outcome.name.startsWith("primary")) {
    return outcome.recoveredMs !== undefined && outcome.recoveredMs <= 2000 ? "✅" : "❌";
  }
  return outcome.unrecorded === 0 ? "✅" : "❌";
}

function recoveryCell(outcome: Outcome): string {
  const s = outcome.shadowRecords;
  switch (outcome.recovery) {
    case "shadow":
      return `shadow answers in the comparison again ${seconds(outcome.recoveredMs)} after it was back`;
    case "pair":
      return `pairs stored again ${seconds(outcome.recoveredMs)} after metrics-service was ready`;
    case "primary":
      return `first answer ${seconds(outcome.recoveredMs)} after the primary was ready`;
    default:
      return outcome.name.startsWith("shadow")
        ? `shadow records: ${s.ok} OK, ${s.mirrorFailures} MIRROR failures, ${s.ownFailures} own failures, ${s.missing} missing`
        : (outcome.note ?? "-");
  }
}

const header = [
  "| Scenario | Calls | Primary errors | p50 ms (× control) | p99 ms (× control) | Acknowledged / unrecorded / counted dropped / lost | Comparison | Target |",
  "|---|---|---|---|---|---|---|---|",
];
const rows = outcomes.map((outcome) => {
  const errors =
    outcome.primaryErrors === 0
      ? "0"
      : `${outcome.primaryErrors} (${Object.entries(outcome.errorCodes)
          .map(([code, n]) => `${n} ${code}`)
          .join(", ")})`;
  const dropped = Number.isNaN(outcome.droppedCounted) ? "-" : String(outcome.droppedCounted);
  return `| ${outcome.name} | ${outcome.calls} | ${errors} | ${outcome.p50} (${ratio(outcome.p50, control.p50)}) | ${outcome.p99} (${ratio(outcome.p99, control.p99)}) | ${outcome.acknowledged} / ${outcome.unrecorded} / ${dropped} / ${outcome.lost} | ${recoveryCell(outcome)} | ${verdict(outcome)} |`;
});
const table = [...header, ...rows].join("\n");
const about = `${rate} Predict calls/s through app-service (Connect, HTTP/1.1 keep-alive), ${options.preMs / 1000} s before the fault and ${options.postMs / 1000} s after it cleared, a fresh mesh per scenario; measured ${new Date().toISOString().slice(0, 10)} on ${process.platform}/${process.arch}, Node ${process.version}, in ${((Date.now() - started) / 1000).toFixed(0)} s.`;
console.log(`\n${about}\n\n${table}\n`);
for (const outcome of outcomes) {
  for (const line of outcome.restarts) {
    console.log(`${outcome.name}: ${line}`);
  }
}

if (writeReadme) {
  const file = path.join(ROOT, "README.md");
  const text = readFileSync(file, "utf8");
  const [head, rest] = text.split("<!-- faults:start -->\n");
  const tail = rest?.split("<!-- faults:end -->")[1];
  if (head === undefined || tail === undefined) {
    console.error("README.md has no <!-- faults:start --> … <!-- faults:end --> block");
    process.exit(1);
  }
  writeFileSync(file, `${head}<!-- faults:start -->\n${about}\n\n${table}\n<!-- faults:end -->${tail}`);
  console.log("README.md: the Reliability table is updated.");
}
process.exit(0);
