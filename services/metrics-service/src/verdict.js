import { create } from "@bufbuild/protobuf";
import { CheckOutcome, Decision, VerdictCheckSchema, VerdictSchema, } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
const pct = (x) => `${(x * 100).toFixed(1)} %`;
const seconds = (x) => `${(x / 1000).toFixed(1)} s`;
const ms = (x) => `${x.toFixed(2)} ms`;
function check(name, outcome, observed, threshold, message) {
    return create(VerdictCheckSchema, { name, outcome, observed, threshold, message });
}
/** The checks, in the order they are listed. Every check is evaluated, whatever the others say. */
export function evaluateChecks(input, t) {
    const enough = input.pairCount >= t.minPairs;
    const skip = (name, observed, threshold, what) => check(name, CheckOutcome.SKIPPED, observed, threshold, `${what} not judged: only ${input.pairCount} of the ${t.minPairs} judged pairs needed.`);
    const checks = [];
    const leftOut = input.allPairCount - input.pairCount;
    const apart = leftOut > 0
        ? ` (${input.allPairCount} paired; left out: ${input.conflictCount} with different inputs, ` +
            `${input.callerErrorPairCount} refused by both for the caller's fault)`
        : "";
    checks.push(enough
        ? check("min_pairs", CheckOutcome.PASS, input.pairCount, t.minPairs, `${input.pairCount} judged pairs observed${apart}; ${t.minPairs} are needed.`)
        : check("min_pairs", CheckOutcome.SKIPPED, input.pairCount, t.minPairs, `Only ${input.pairCount} judged pairs observed${apart}; at least ${t.minPairs} are needed before a decision.`));
    // Coverage: a shadow that answered materially less than the mirrored share cannot be promoted, whatever the
    // pairs say (README: "The verdict").
    const coverageName = "coverage";
    if (!enough) {
        checks.push(skip(coverageName, input.coverage, t.minCoverage, "Coverage"));
    }
    else if (input.expectedMirrorRatio <= 0 || input.settledPrimaryCount === 0) {
        checks.push(check(coverageName, CheckOutcome.SKIPPED, input.coverage, t.minCoverage, "Coverage not judged: no share of the traffic is expected to be mirrored, or no primary record is settled."));
    }
    else {
        const expected = input.settledPrimaryCount * input.expectedMirrorRatio;
        const what = `Coverage ${pct(input.coverage)}: the shadow has a record for ${input.mirroredPrimaryCount} of the ` +
            `${input.settledPrimaryCount} settled primary records, ${Math.round(expected)} expected at a ` +
            `${pct(input.expectedMirrorRatio)} mirror share;`;
        checks.push(input.coverage + 1e-12 >= t.minCoverage
            ? check(coverageName, CheckOutcome.PASS, input.coverage, t.minCoverage, `${what} at least ${pct(t.minCoverage)}.`)
            : check(coverageName, CheckOutcome.WARN, input.coverage, t.minCoverage, `${what} below ${pct(t.minCoverage)}, so the shadow was not tested on the traffic it would serve ` +
                "(mirror dropped, shadow down, or its reports lost)."));
    }
    // Silence: primary records keep arriving while the shadow's stopped (a hung or dead shadow, whose reports are
    // the only signal in a cluster where Envoy discards the mirror's result).
    const silenceName = "shadow_silence";
    const allowedMs = input.expectedMirrorRatio > 0 ? t.maxShadowSilenceMs / input.expectedMirrorRatio : 0;
    if (!enough) {
        checks.push(skip(silenceName, input.shadowSilenceMs, allowedMs, "Shadow silence"));
    }
    else if (input.expectedMirrorRatio <= 0) {
        checks.push(check(silenceName, CheckOutcome.SKIPPED, input.shadowSilenceMs, allowedMs, "Shadow silence not judged: no share of the traffic is expected to be mirrored."));
    }
    else if (input.shadowSilenceMs <= allowedMs) {
        checks.push(check(silenceName, CheckOutcome.PASS, input.shadowSilenceMs, allowedMs, `The shadow's records keep up with the primary's (behind by ${seconds(input.shadowSilenceMs)}, at most ` +
            `${seconds(allowedMs)} allowed).`));
    }
    else {
        checks.push(check(silenceName, CheckOutcome.WARN, input.shadowSilenceMs, allowedMs, `The shadow's records stopped: primary records kept arriving for ${seconds(input.shadowSilenceMs)} after ` +
            `the shadow's last one (at most ${seconds(allowedMs)} allowed); the shadow is down, hung or not reporting.`));
    }
    // Agreement: the lower bound of the interval, so that a few lucky pairs cannot promote.
    const agreementName = "agreement_lower_bound";
    if (!enough) {
        checks.push(skip(agreementName, input.agreementLowerBound, t.minAgreement, "Agreement"));
    }
    else if (input.comparedPairCount === 0) {
        checks.push(check(agreementName, CheckOutcome.WARN, 0, t.minAgreement, "No pair could be compared: one side failed on every paired request."));
    }
    else if (input.agreementLowerBound >= t.minAgreement) {
        checks.push(check(agreementName, CheckOutcome.PASS, input.agreementLowerBound, t.minAgreement, `Agreement ${pct(input.agreementRate)} on ${input.comparedPairCount} pairs; its 95 % lower bound ` +
            `${pct(input.agreementLowerBound)} is at least ${pct(t.minAgreement)}.`));
    }
    else {
        checks.push(check(agreementName, CheckOutcome.WARN, input.agreementLowerBound, t.minAgreement, `Agreement ${pct(input.agreementRate)} on ${input.comparedPairCount} pairs; its 95 % lower bound ` +
            `${pct(input.agreementLowerBound)} is below ${pct(t.minAgreement)}.`));
    }
    // Errors: gRPC-status aware, relative to the primary on the same traffic.
    const errorName = "shadow_error_rate";
    const errorLimit = input.primaryErrorRate + t.maxErrorRateIncrease;
    if (!enough) {
        checks.push(skip(errorName, input.shadowErrorRate, errorLimit, "Error rate"));
    }
    else if (input.shadowErrorRate <= errorLimit + 1e-12) {
        checks.push(check(errorName, CheckOutcome.PASS, input.shadowErrorRate, errorLimit, `Shadow error rate ${pct(input.shadowErrorRate)} is within ${pct(t.maxErrorRateIncrease)} of the ` +
            `primary's ${pct(input.primaryErrorRate)} on the same ${input.pairCount} judged pairs.`));
    }
    else {
        checks.push(check(errorName, CheckOutcome.FAIL, input.shadowErrorRate, errorLimit, `Shadow error rate ${pct(input.shadowErrorRate)} exceeds the primary's ${pct(input.primaryErrorRate)} ` +
            `by more than ${pct(t.maxErrorRateIncrease)} on the same ${input.pairCount} judged pairs.`));
    }
    // Latency: the p99 ratio, ignoring differences inside the slack (sub-millisecond noise).
    const latencyName = "latency_p99_ratio";
    const ratio = input.primaryLatencyP99Ms > 0 && input.shadowLatencyP99Ms > 0
        ? input.shadowLatencyP99Ms / input.primaryLatencyP99Ms
        : 0;
    if (!enough) {
        checks.push(skip(latencyName, ratio, t.maxLatencyP99Ratio, "Latency"));
    }
    else if (ratio === 0) {
        checks.push(check(latencyName, CheckOutcome.SKIPPED, 0, t.maxLatencyP99Ratio, "Latency not judged: a role has no successful record to measure."));
    }
    else if (ratio <= t.maxLatencyP99Ratio ||
        input.shadowLatencyP99Ms - input.primaryLatencyP99Ms <= t.latencySlackMs) {
        checks.push(check(latencyName, CheckOutcome.PASS, ratio, t.maxLatencyP99Ratio, `Shadow p99 ${ms(input.shadowLatencyP99Ms)} is ${ratio.toFixed(2)}× the primary's ` +
            `${ms(input.primaryLatencyP99Ms)}` +
            (ratio > t.maxLatencyP99Ratio
                ? `, above ${t.maxLatencyP99Ratio}× but within the ${ms(t.latencySlackMs)} slack.`
                : `, within ${t.maxLatencyP99Ratio}×.`)));
    }
    else {
        checks.push(check(latencyName, CheckOutcome.WARN, ratio, t.maxLatencyP99Ratio, `Shadow p99 ${ms(input.shadowLatencyP99Ms)} is ${ratio.toFixed(2)}× the primary's ` +
            `${ms(input.primaryLatencyP99Ms)}, above ${t.maxLatencyP99Ratio}×.`));
    }
    // Accuracy on user feedback: judged only once both roles have enough of it; never blocks promotion before.
    const accuracyName = "feedback_accuracy";
    const accuracyLimit = Math.max(0, input.primaryAccuracy - t.maxAccuracyDrop);
    const feedback = Math.min(input.primaryFeedbackCount, input.shadowFeedbackCount);
    if (!enough) {
        checks.push(skip(accuracyName, input.shadowAccuracy, accuracyLimit, "Accuracy"));
    }
    else if (feedback < t.minFeedback) {
        checks.push(check(accuracyName, CheckOutcome.SKIPPED, input.shadowAccuracy, accuracyLimit, `Accuracy not judged: ${feedback} feedback-labelled predictions per role, ${t.minFeedback} needed.`));
    }
    else if (input.shadowAccuracy + 1e-12 >= accuracyLimit) {
        checks.push(check(accuracyName, CheckOutcome.PASS, input.shadowAccuracy, accuracyLimit, `Shadow accuracy ${pct(input.shadowAccuracy)} (${input.shadowFeedbackCount} labelled) is not worse than ` +
            `the primary's ${pct(input.primaryAccuracy)} (${input.primaryFeedbackCount}) beyond ${pct(t.maxAccuracyDrop)}.`));
    }
    else {
        checks.push(check(accuracyName, CheckOutcome.FAIL, input.shadowAccuracy, accuracyLimit, `Shadow accuracy ${pct(input.shadowAccuracy)} (${input.shadowFeedbackCount} labelled) is worse than ` +
            `the primary's ${pct(input.primaryAccuracy)} (${input.primaryFeedbackCount}) by more than ` +
            `${pct(t.maxAccuracyDrop)}.`));
    }
    return checks;
}
/**
 * The decision, from the checks: too few pairs → INSUFFICIENT_DATA; any FAIL → ROLLBACK; any WARN → HOLD; else
 * PROMOTE. The reasons are the messages of the checks that decided it (ROLLBACK: failures, then warnings; PROMOTE:
 * every check that passed, then those skipped).
 */
export function decide(input, thresholds) {
    const checks = evaluateChecks(input, thresholds);
    const messages = (outcome) => checks.filter((c) => c.outcome === outcome).map((c) => c.message);
    let decision;
    let reasons;
    if (input.pairCount < thresholds.minPairs) {
        decision = Decision.INSUFFICIENT_DATA;
        reasons = checks.filter((c) => c.name === "min_pairs").map((c) => c.message);
    }
    else if (checks.some((c) => c.outcome === CheckOutcome.FAIL)) {
        decision = Decision.ROLLBACK;
        reasons = [...messages(CheckOutcome.FAIL), ...messages(CheckOutcome.WARN)];
    }
    else if (checks.some((c) => c.outcome === CheckOutcome.WARN)) {
        decision = Decision.HOLD;
        reasons = messages(CheckOutcome.WARN);
    }
    else {
        decision = Decision.PROMOTE;
        reasons = [...messages(CheckOutcome.PASS), ...messages(CheckOutcome.SKIPPED)];
    }
    return create(VerdictSchema, { decision, reasons, checks });
}
//# sourceMappingURL=verdict.js.map