/**
 * Measures inference latency and peak memory of one ONNX model in a fresh process, so the numbers are not
 * disturbed by the trainer's heap. Usage: bench-child.ts <model.onnx> <texts.json>; prints one JSON line.
 */
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { createSession, runBatch } from "./onnx-inference.js";

interface LatencyStats {
  runs: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

function stats(samples: number[]): LatencyStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
  return {
    runs: samples.length,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    meanMs: samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length),
  };
}

async function main(): Promise<void> {
  const [modelPath, textsPath, singleRunsArg, batchRunsArg] = process.argv.slice(2);
  if (modelPath === undefined || textsPath === undefined)
    throw new Error("usage: bench-child <model> <texts>");
  const texts = JSON.parse(readFileSync(textsPath, "utf8")) as string[];
  const singleRuns = Number(singleRunsArg ?? 500);
  const batchRuns = Number(batchRunsArg ?? 100);
  const baselineMaxRssKiB = process.resourceUsage().maxRSS;
  const session = await createSession(modelPath);
  const pick = (i: number) => texts[i % texts.length] ?? "";
  for (let i = 0; i < 50; i++) await runBatch(session, [pick(i)]);
  const single: number[] = [];
  for (let i = 0; i < singleRuns; i++) {
    const text = pick(i);
    const t0 = process.hrtime.bigint();
    await runBatch(session, [text]);
    single.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const batch: number[] = [];
  for (let i = 0; i < batchRuns; i++) {
    const texts32 = Array.from({ length: 32 }, (_, k) => pick(i * 32 + k));
    const t0 = process.hrtime.bigint();
    await runBatch(session, texts32);
    batch.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const peakMaxRssKiB = process.resourceUsage().maxRSS;
  process.stdout.write(
    `${JSON.stringify({
      single: stats(single),
      batch32: stats(batch),
      peakRssBytes: peakMaxRssKiB * 1024,
      baselineRssBytes: baselineMaxRssKiB * 1024,
      modelRssBytes: (peakMaxRssKiB - baselineMaxRssKiB) * 1024,
      // Context for the numbers: other work on the machine inflates the tail latencies.
      loadAverage1m: loadavg()[0] ?? 0,
      cpus: availableParallelism(),
    })}\n`,
  );
}

await main();
