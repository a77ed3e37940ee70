import { For } from "solid-js";
import { percent } from "../lib/format";

export interface LatencyBucketView {
  /** Inclusive upper bound in ms; Infinity for the last bucket. */
  upperBoundMs: number;
  count: number;
}

export interface LatencySeries {
  name: string;
  className: string;
  buckets: readonly LatencyBucketView[];
}

const WIDTH = 640;
const HEIGHT = 240;
const PAD = { left: 48, right: 16, top: 14, bottom: 40 };

function boundLabel(bound: number, previous: number | undefined): string {
  if (!Number.isFinite(bound)) {
    return `> ${previous ?? 0} ms`;
  }
  return `≤ ${bound} ms`;
}

/**
 * The latency distribution of each role as grouped bars: for every bucket, the share of that role's calls that fell
 * in it, so that a role with fewer records (a sampled shadow) is still comparable.
 */
export function LatencyChart(props: { series: readonly LatencySeries[] }) {
  const bounds = () => {
    const all = new Set<number>();
    for (const series of props.series) {
      for (const bucket of series.buckets) {
        all.add(bucket.upperBoundMs);
      }
    }
    return [...all].sort((a, b) => a - b);
  };
  const shares = () =>
    props.series.map((series) => {
      const total = series.buckets.reduce((sum, bucket) => sum + bucket.count, 0);
      return bounds().map((bound) => {
        const bucket = series.buckets.find((candidate) => candidate.upperBoundMs === bound);
        return total > 0 && bucket ? bucket.count / total : 0;
      });
    });
  const maxShare = () => Math.max(0.01, ...shares().flat());
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const group = () => plotWidth / Math.max(1, bounds().length);
  const barWidth = () => (group() * 0.8) / Math.max(1, props.series.length);
  const y = (share: number) => PAD.top + plotHeight * (1 - share / maxShare());

  return (
    <figure class="chart-figure">
      <div class="chart-scroll">
        <svg
          class="chart"
          viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
          role="img"
          aria-label={`Latency distribution per role over ${bounds().length} buckets`}
        >
          <For each={[0, 0.5, 1]}>
            {(tick) => (
              <g class="grid">
                <line
                  x1={PAD.left}
                  x2={WIDTH - PAD.right}
                  y1={y(tick * maxShare())}
                  y2={y(tick * maxShare())}
                />
                <text x={PAD.left - 6} y={y(tick * maxShare()) + 4} text-anchor="end">
                  {percent(tick * maxShare(), 0)}
                </text>
              </g>
            )}
          </For>
          <For each={props.series}>
            {(series, seriesIndex) => (
              <For each={shares()[seriesIndex()] ?? []}>
                {(share, bucketIndex) => (
                  <rect
                    class={`latency-bar ${series.className}`}
                    x={PAD.left + group() * bucketIndex() + group() * 0.1 + barWidth() * seriesIndex()}
                    width={barWidth()}
                    y={y(share)}
                    height={PAD.top + plotHeight - y(share)}
                  >
                    <title>
                      {series.name} {boundLabel(bounds()[bucketIndex()] ?? 0, bounds()[bucketIndex() - 1])}:{" "}
                      {percent(share)} of calls
                    </title>
                  </rect>
                )}
              </For>
            )}
          </For>
          <For each={bounds()}>
            {(bound, index) => (
              <text
                class="axis"
                x={PAD.left + group() * (index() + 0.5)}
                y={HEIGHT - PAD.bottom + 16}
                text-anchor="middle"
              >
                {Number.isFinite(bound) ? bound : "more"}
              </text>
            )}
          </For>
          <text class="axis" x={WIDTH - PAD.right} y={HEIGHT - 6} text-anchor="end">
            latency bucket upper bound (ms)
          </text>
        </svg>
      </div>
      <figcaption class="legend">
        <For each={props.series}>
          {(series) => (
            <span class="legend-item">
              <span class={`swatch ${series.className}`} aria-hidden="true" />
              {series.name}
            </span>
          )}
        </For>
      </figcaption>
    </figure>
  );
}
