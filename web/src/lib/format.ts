/** Formatting shared by the views. */

export function percent(value: number, digits = 1): string {
  return `${(value * 100).toFixed(digits)} %`;
}

export function ms(value: number): string {
  if (value >= 100) {
    return `${Math.round(value)} ms`;
  }
  if (value >= 1) {
    return `${value.toFixed(1)} ms`;
  }
  return `${value.toFixed(2)} ms`;
}

export function count(value: bigint | number): string {
  return Number(value).toLocaleString("en-US");
}

/** "spam" → "Spam". */
export function labelName(label: string): string {
  return label ? label.charAt(0).toUpperCase() + label.slice(1) : "—";
}

export function time(date: Date | undefined): string {
  return date ? date.toLocaleTimeString("en-GB", { hour12: false }) : "—";
}
