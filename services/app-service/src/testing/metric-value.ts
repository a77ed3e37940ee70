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

/** Polls `condition` until it is true; fails after `attempts` tries. Bounded in count and time, never timed. */
export async function eventually(condition: () => boolean | Promise<boolean>, attempts = 200, pauseMs = 25) {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (await condition()) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  throw new Error(`condition not met after ${attempts} attempts`);
}
