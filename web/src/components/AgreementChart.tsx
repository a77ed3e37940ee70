import { For, Show } from "solid-js";
import { percent, time } from "../lib/format";

export interface AgreementPointView {
  start: Date;
  pairs: number;
  agreeing: number;
}

const WIDTH = 640;
const HEIGHT = 220;
const PAD = { left: 48, right: 16, top: 14, bottom: 34 };

/**
 * Agreement over time: one point per time bucket that has pairs (empty buckets leave a gap), on a 0–100 % axis, and
 * the number of pairs per bucket as faint bars behind it — a point made of 2 pairs means less than one of 200.
 */
export function AgreementChart(props: { points: readonly AgreementPointView[] }) {
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const step = () => plotWidth / Math.max(1, props.points.length);
  const x = (index: number) => PAD.left + step() * (index + 0.5);
  const y = (rate: number) => PAD.top + plotHeight * (1 - rate);
  const maxPairs = () => Math.max(1, ...props.points.map((point) => point.pairs));
  const segments = () => {
    const lines: string[] = [];
    let current: string[] = [];
    props.points.forEach((point, index) => {
      if (point.pairs === 0) {
        if (current.length > 1) {
          lines.push(current.join(" "));
        }
        current = [];
        return;
      }
      current.push(`${x(index).toFixed(1)},${y(point.agreeing / point.pairs).toFixed(1)}`);
    });
    if (current.length > 1) {
      lines.push(current.join(" "));
    }
    return lines;
  };
  const summary = () => {
    const withPairs = props.points.filter((point) => point.pairs > 0);
    if (withPairs.length === 0) {
      return "Agreement over time: no pairs yet.";
    }
    const last = withPairs[withPairs.length - 1];
    return `Agreement over time in ${props.points.length} buckets; latest ${last ? percent(last.agreeing / last.pairs) : ""} of ${last?.pairs ?? 0} pairs.`;
  };

  return (
    <div class="chart-scroll">
      <svg class="chart" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={summary()}>
        <For each={[0, 0.5, 1]}>
          {(tick) => (
            <g class="grid">
              <line x1={PAD.left} x2={WIDTH - PAD.right} y1={y(tick)} y2={y(tick)} />
              <text x={PAD.left - 6} y={y(tick) + 4} text-anchor="end">
                {percent(tick, 0)}
              </text>
            </g>
          )}
        </For>
        <For each={props.points}>
          {(point, index) => (
            <rect
              class="pairs-bar"
              x={x(index()) - step() * 0.35}
              width={step() * 0.7}
              y={PAD.top + plotHeight * (1 - point.pairs / maxPairs())}
              height={(plotHeight * point.pairs) / maxPairs()}
            >
              <title>
                {time(point.start)}: {point.pairs} pairs
              </title>
            </rect>
          )}
        </For>
        <For each={segments()}>{(line) => <polyline class="agreement-line" points={line} />}</For>
        <For each={props.points}>
          {(point, index) => (
            <Show when={point.pairs > 0}>
              <circle class="agreement-dot" cx={x(index())} cy={y(point.agreeing / point.pairs)} r={3.5}>
                <title>
                  {time(point.start)}: {percent(point.agreeing / point.pairs)} agree ({point.agreeing} of{" "}
                  {point.pairs} pairs)
                </title>
              </circle>
            </Show>
          )}
        </For>
        <Show when={props.points.length > 0}>
          <text class="axis" x={PAD.left} y={HEIGHT - 10}>
            {time(props.points[0]?.start)}
          </text>
          <text class="axis" x={WIDTH - PAD.right} y={HEIGHT - 10} text-anchor="end">
            {time(props.points[props.points.length - 1]?.start)}
          </text>
        </Show>
      </svg>
    </div>
  );
}
