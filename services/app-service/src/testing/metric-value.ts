import type { Registry } from "prom-client";

/** The value of one series of a counter or gauge in `registry` (0 when the series does not exist yet). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) {
    throw new Error(`no metric named ${name}`);
  }
  const { values } = await metric.get();
  const matching = values.filter((value) =>
    Object.entries(labels).every(([key, expected]) => String(value.labels[key]) === expected),
  );
  return matching.reduce((sum, value) => sum + value.value, 0);
}

/** The bound of `vi.waitFor` / `vi.waitUntil` in app-service's tests: 10 s, checked every 25 ms. */
export const WAIT = { timeout: 10_000, interval: 25 } as const;
