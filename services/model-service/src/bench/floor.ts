import { loadModel } from "../model.js";

/**
 * The floor of the serving path: onnxruntime-node's `session.run` in-process (through the same OnnxClassifier the
 * service uses), at several batch sizes, with nothing else on the event loop.
 * Usage: node dist/bench/floor.js <modelDir> <seconds> <batch sizes…>; prints one JSON line per batch size.
 */
const [dir, secondsArg, ...sizes] = process.argv.slice(2);
if (!dir || !secondsArg || sizes.length === 0) {
  console.error("usage: floor <modelDir> <seconds> <batch sizes…>");
  process.exit(2);
}
const seconds = Number(secondsArg);
const model = await loadModel(dir);
const sample =
  "Dear friend, you have been selected to receive a FREE gift card worth $500. Click the link below to";
for (const size of sizes.map(Number)) {
  const texts = Array.from({ length: size }, (_, i) => `${sample} claim it now (${i}).`);
  const warmUntil = performance.now() + 500;
  while (performance.now() < warmUntil) await model.classify(texts);
  const durations: number[] = [];
  const started = performance.now();
  const until = started + seconds * 1000;
  while (performance.now() < until && durations.length < 5_000_000) {
    const t0 = performance.now();
    await model.classify(texts);
    durations.push(performance.now() - t0);
  }
  const elapsed = (performance.now() - started) / 1000;
  durations.sort((a, b) => a - b);
  const pick = (q: number) =>
    (durations[Math.min(durations.length - 1, Math.floor(q * durations.length))] ?? 0) * 1000;
  console.log(
    JSON.stringify({
      batch: size,
      runsPerSec: durations.length / elapsed,
      textsPerSec: (durations.length * size) / elapsed,
      p50us: pick(0.5),
      p99us: pick(0.99),
    }),
  );
}
await model.close();
