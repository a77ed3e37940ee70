import { labelName, percent } from "../lib/format";

/** One label's probability as a labelled bar (an ARIA meter, so screen readers read the value). */
export function ProbabilityBar(props: { label: string; probability: number }) {
  const value = () => Math.min(1, Math.max(0, props.probability));
  return (
    <div class="probability">
      <span class="probability-label" id={`probability-${props.label}`}>
        {labelName(props.label)}
      </span>
      {/* biome-ignore lint/a11y/useSemanticElements: a native <meter> cannot be styled alike across browsers. */}
      <div
        class={`probability-track label-${props.label}`}
        role="meter"
        aria-labelledby={`probability-${props.label}`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(value() * 1000) / 10}
        aria-valuetext={percent(value())}
      >
        <div class="probability-fill" style={{ width: `${value() * 100}%` }} />
      </div>
      <span class="probability-value">{percent(value())}</span>
    </div>
  );
}
