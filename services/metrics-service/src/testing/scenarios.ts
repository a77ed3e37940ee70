import { type RecordSpec, sha256Of } from "./records.js";

/**
 * The two scenarios of issue 10, as the records the model-services would report: the primary (spam-v1) and the
 * shadow (spam-v2) each report every call they served or refused, with the input's SHA-256, one request id per call.
 */

const texts = ["win a free cruise now", "lunch at noon?", "cheap meds online", "minutes of the meeting"];

/** One call: the primary's record and, while the shadow is alive, the shadow's. */
function call(
  requestId: string,
  timeMs: number,
  text: string,
  options: { shadow: boolean; code?: number },
): RecordSpec[] {
  const code = options.code ?? 0;
  const label = /free|cheap/.test(text) ? "spam" : "ham";
  const common = { requestId, sha256: sha256Of(text), code, ...(code === 0 ? { label } : {}) };
  const records: RecordSpec[] = [
    { ...common, role: "primary", timeMs, latencyMs: 0.8 + (timeMs % 7) / 10, model: "1.0.0" },
  ];
  if (options.shadow) {
    records.push({
      ...common,
      role: "shadow",
      timeMs: timeMs + 3,
      latencyMs: 0.9 + (timeMs % 5) / 10,
      model: "2.0.0",
    });
  }
  return records;
}

/**
 * False PROMOTE: 750 calls reach both models, then the shadow is killed and 750 more reach only the primary
 * (mirror ratio 0.5). Calls are `stepMs` apart, the first at `startMs`.
 */
export function falsePromote(startMs: number, stepMs = 200): RecordSpec[] {
  const records: RecordSpec[] = [];
  for (let i = 0; i < 1500; i++) {
    records.push(
      ...call(`fp-${i}`, startMs + i * stepMs, texts[i % texts.length] as string, { shadow: i < 750 }),
    );
  }
  return records;
}

/**
 * False ROLLBACK: 150 good calls, 10 whitespace-only calls that both models refuse with INVALID_ARGUMENT, then the
 * shadow dies and 300 more calls reach only the primary.
 */
export function falseRollback(startMs: number, stepMs = 200): RecordSpec[] {
  const records: RecordSpec[] = [];
  let i = 0;
  for (; i < 150; i++) {
    records.push(
      ...call(`fr-${i}`, startMs + i * stepMs, texts[i % texts.length] as string, { shadow: true }),
    );
  }
  for (; i < 160; i++) {
    records.push(...call(`fr-${i}`, startMs + i * stepMs, "   ", { shadow: true, code: 3 }));
  }
  for (; i < 460; i++) {
    records.push(
      ...call(`fr-${i}`, startMs + i * stepMs, texts[i % texts.length] as string, { shadow: false }),
    );
  }
  return records;
}

/**
 * Two candidates (issue 15): 1500 calls `stepMs` apart reach the primary (spam-v1) and spam-v2, which agrees on
 * every text; spam-lite answers the first 750 (it labels "lunch at noon?" spam, unlike the primary) and is then
 * killed. One request id per call, shared by the three records.
 */
export function twoCandidates(startMs: number, stepMs = 200): RecordSpec[] {
  const records: RecordSpec[] = [];
  for (let i = 0; i < 1500; i++) {
    const text = texts[i % texts.length] as string;
    const label = /free|cheap/.test(text) ? "spam" : "ham";
    const timeMs = startMs + i * stepMs;
    const common = { requestId: `two-${i}`, sha256: sha256Of(text) };
    records.push(
      { ...common, role: "primary", timeMs, label, latencyMs: 0.8 + (timeMs % 7) / 10, model: "1.0.0" },
      {
        ...common,
        role: "shadow",
        candidate: "spam-v2",
        timeMs: timeMs + 3,
        label,
        latencyMs: 0.9 + (timeMs % 5) / 10,
        model: "2.0.0",
      },
    );
    if (i < 750) {
      records.push({
        ...common,
        role: "shadow",
        candidate: "spam-lite",
        timeMs: timeMs + 2,
        label: /lunch/.test(text) ? "spam" : label,
        latencyMs: 0.3,
        model: "0.1.0",
      });
    }
  }
  return records;
}
