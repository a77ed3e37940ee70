/** Small, dependency-free statistics for the report. */
/** z for a two-sided 95 % interval. */
const Z95 = 1.959963984540054;
/**
 * The Wilson score interval of a proportion (successes of n) at 95 % confidence. Unlike the normal approximation it
 * stays inside [0, 1] and is honest at small n — which is exactly when a shadow verdict must not be overconfident.
 * With n = 0 nothing is known: rate 0 and the interval [0, 1].
 */
export function wilson(successes, n, z = Z95) {
    if (n <= 0) {
        return { rate: 0, lower: 0, upper: 1 };
    }
    const p = successes / n;
    const z2 = z * z;
    const denominator = 1 + z2 / n;
    const centre = (p + z2 / (2 * n)) / denominator;
    const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denominator;
    // At 0 or n successes the bound is exactly 0 or 1; floating point would leave a speck.
    return {
        rate: p,
        lower: successes <= 0 ? 0 : Math.max(0, centre - half),
        upper: successes >= n ? 1 : Math.min(1, centre + half),
    };
}
/**
 * The q-quantile (0 < q ≤ 1) of ascending-sorted values by the nearest-rank method: the smallest value with at least
 * q·n values at or below it. Always an observed value; 0 for no values.
 */
export function quantileSorted(sorted, q) {
    const n = sorted.length;
    if (n === 0) {
        return 0;
    }
    const rank = Math.min(n, Math.max(1, Math.ceil(q * n)));
    return sorted[rank - 1] ?? 0;
}
/** Sorts a copy ascending (numerically). */
export function sortedCopy(values) {
    return Float64Array.from(values).sort();
}
export function mean(values) {
    if (values.length === 0) {
        return 0;
    }
    let sum = 0;
    for (let i = 0; i < values.length; i++) {
        sum += values[i] ?? 0;
    }
    return sum / values.length;
}
/**
 * The score delta of a pair: the largest absolute difference between the two models' probabilities of a label, over
 * the union of their labels (a label one side does not give counts as 0 there).
 */
export function scoreDelta(a, b) {
    const first = new Map(a);
    const second = new Map(b);
    let delta = 0;
    for (const label of new Set([...first.keys(), ...second.keys()])) {
        delta = Math.max(delta, Math.abs((first.get(label) ?? 0) - (second.get(label) ?? 0)));
    }
    return delta;
}
//# sourceMappingURL=stats.js.map