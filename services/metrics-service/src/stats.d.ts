/** Small, dependency-free statistics for the report. */
export interface Interval {
    rate: number;
    lower: number;
    upper: number;
}
/**
 * The Wilson score interval of a proportion (successes of n) at 95 % confidence. Unlike the normal approximation it
 * stays inside [0, 1] and is honest at small n — which is exactly when a shadow verdict must not be overconfident.
 * With n = 0 nothing is known: rate 0 and the interval [0, 1].
 */
export declare function wilson(successes: number, n: number, z?: number): Interval;
/**
 * The q-quantile (0 < q ≤ 1) of ascending-sorted values by the nearest-rank method: the smallest value with at least
 * q·n values at or below it. Always an observed value; 0 for no values.
 */
export declare function quantileSorted(sorted: ArrayLike<number>, q: number): number;
/** Sorts a copy ascending (numerically). */
export declare function sortedCopy(values: readonly number[]): Float64Array;
export declare function mean(values: ArrayLike<number>): number;
/**
 * The score delta of a pair: the largest absolute difference between the two models' probabilities of a label, over
 * the union of their labels (a label one side does not give counts as 0 there).
 */
export declare function scoreDelta(a: readonly [string, number][], b: readonly [string, number][]): number;
