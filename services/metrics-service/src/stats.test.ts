import { describe, expect, it } from "vitest";
import { mean, quantileSorted, sortedCopy, wilson } from "./stats.js";

describe("wilson", () => {
  it("matches the textbook 95 % interval for 8 of 10", () => {
    const { rate, lower, upper } = wilson(8, 10);
    expect(rate).toBe(0.8);
    expect(lower).toBeCloseTo(0.4902, 4);
    expect(upper).toBeCloseTo(0.9433, 4);
  });

  it("stays inside [0, 1] at the extremes", () => {
    const all = wilson(50, 50);
    expect(all.upper).toBe(1);
    expect(all.lower).toBeCloseTo(0.9287, 4);
    const none = wilson(0, 50);
    expect(none.lower).toBe(0);
    expect(none.upper).toBeCloseTo(0.0713, 4);
  });

  it("knows nothing without observations", () => {
    expect(wilson(0, 0)).toEqual({ rate: 0, lower: 0, upper: 1 });
  });

  it("narrows as the number of pairs grows", () => {
    const small = wilson(19, 20);
    const large = wilson(1900, 2000);
    expect(large.upper - large.lower).toBeLessThan(small.upper - small.lower);
  });
});

describe("quantileSorted", () => {
  const values = sortedCopy([5, 1, 4, 2, 3, 10, 9, 8, 7, 6]);

  it("uses the nearest rank, so every quantile is an observed value", () => {
    expect(quantileSorted(values, 0.5)).toBe(5);
    expect(quantileSorted(values, 0.95)).toBe(10);
    expect(quantileSorted(values, 0.1)).toBe(1);
    expect(quantileSorted(values, 1)).toBe(10);
  });

  it("is 0 for no values", () => {
    expect(quantileSorted([], 0.99)).toBe(0);
    expect(mean([])).toBe(0);
  });

  it("sorts numerically, not as strings", () => {
    expect([...sortedCopy([10, 9, 100])]).toEqual([9, 10, 100]);
    expect(mean([1, 2, 3, 6])).toBe(3);
  });
});
