import { Code, ConnectError } from "@connectrpc/connect";
import { ConfigError, num, str } from "@shadowmesh/common";

/**
 * Local fault injection on the shadow route: the fault kinds of Istio's VirtualService `fault` (HTTPFaultInjection)
 * for the calls app-service mirrors to the shadow, so that the local mesh can rehearse what a cluster does.
 *
 * | Istio (`http[].fault` on the route to the shadow) | app-service setting                          |
 * |---------------------------------------------------|----------------------------------------------|
 * | `delay.fixedDelay: 0.5s`                          | `APP_SERVICE_SHADOW_FAULT_DELAY_MS=500`       |
 * | `delay.percentage.value: 10`                      | `APP_SERVICE_SHADOW_FAULT_DELAY_PERCENT=10`   |
 * | `abort.grpcStatus: UNAVAILABLE`                   | `APP_SERVICE_SHADOW_FAULT_ABORT_CODE=UNAVAILABLE` |
 * | `abort.percentage.value: 100`                     | `APP_SERVICE_SHADOW_FAULT_ABORT_PERCENT=100`  |
 *
 * As in Envoy's fault filter, the delay and the abort are drawn independently for each call; a call drawn for both
 * is delayed, then aborted. A delayed call keeps its absolute deadline, so a delay longer than what is left of it
 * ends the call with DEADLINE_EXCEEDED; an aborted call never reaches the shadow.
 *
 * Injected failures are mirror failures like real ones: counted in app_mirror_failed_total and reported to
 * metrics-service as the shadow's MIRROR records, so the comparison (coverage, errors, verdict) reacts to a faulty
 * shadow exactly as it would to a real one — which is what a rehearsal is for. Each injection is also counted in
 * app_shadow_faults_injected_total{kind}. (In a cluster Envoy discards the mirror's result, so an Istio fault shows
 * only through the shadow's own records: an aborted mirror leaves its primary unmatched, a delayed one is answered
 * late.)
 */
export const faultSpec = {
  SHADOW_FAULT_DELAY_MS: num({
    default: 0,
    desc: "Fault injection on the shadow route (Istio fault.delay.fixedDelay): hold a mirrored call this many ms before sending it.",
  }),
  SHADOW_FAULT_DELAY_PERCENT: num({
    default: 0,
    desc: "Percentage (0-100) of mirrored calls delayed by SHADOW_FAULT_DELAY_MS (Istio fault.delay.percentage).",
  }),
  SHADOW_FAULT_ABORT_CODE: str({
    default: "",
    desc: "Fault injection on the shadow route (Istio fault.abort.grpcStatus): end a mirrored call with this gRPC status (e.g. UNAVAILABLE, or its number) without sending it; empty = no aborts.",
  }),
  SHADOW_FAULT_ABORT_PERCENT: num({
    default: 0,
    desc: "Percentage (0-100) of mirrored calls aborted with SHADOW_FAULT_ABORT_CODE (Istio fault.abort.percentage).",
  }),
};

/** The fault settings, checked. */
export interface ShadowFaults {
  delayMs: number;
  delayPercent: number;
  /** undefined = no aborts */
  abortCode: Code | undefined;
  abortPercent: number;
}

/** gRPC status names as Istio spells them (`UNAVAILABLE`), by code; OK is not a fault. */
const CODES: Record<string, Code> = {
  CANCELLED: Code.Canceled,
  UNKNOWN: Code.Unknown,
  INVALID_ARGUMENT: Code.InvalidArgument,
  DEADLINE_EXCEEDED: Code.DeadlineExceeded,
  NOT_FOUND: Code.NotFound,
  ALREADY_EXISTS: Code.AlreadyExists,
  PERMISSION_DENIED: Code.PermissionDenied,
  RESOURCE_EXHAUSTED: Code.ResourceExhausted,
  FAILED_PRECONDITION: Code.FailedPrecondition,
  ABORTED: Code.Aborted,
  OUT_OF_RANGE: Code.OutOfRange,
  UNIMPLEMENTED: Code.Unimplemented,
  INTERNAL: Code.Internal,
  UNAVAILABLE: Code.Unavailable,
  DATA_LOSS: Code.DataLoss,
  UNAUTHENTICATED: Code.Unauthenticated,
};

/** Reads and checks the fault settings (`prefix` names them in errors). */
export function readFaults(
  prefix: string,
  config: {
    SHADOW_FAULT_DELAY_MS: number;
    SHADOW_FAULT_DELAY_PERCENT: number;
    SHADOW_FAULT_ABORT_CODE: string;
    SHADOW_FAULT_ABORT_PERCENT: number;
  },
): ShadowFaults {
  const fail = (message: string): never => {
    throw new ConfigError(`invalid configuration: ${prefix}${message}`);
  };
  if (!(Number.isInteger(config.SHADOW_FAULT_DELAY_MS) && config.SHADOW_FAULT_DELAY_MS >= 0)) {
    fail(`SHADOW_FAULT_DELAY_MS must be a non-negative integer, got ${config.SHADOW_FAULT_DELAY_MS}`);
  }
  for (const key of ["SHADOW_FAULT_DELAY_PERCENT", "SHADOW_FAULT_ABORT_PERCENT"] as const) {
    if (!(config[key] >= 0 && config[key] <= 100)) {
      fail(`${key} must be between 0 and 100, got ${config[key]}`);
    }
  }
  const raw = config.SHADOW_FAULT_ABORT_CODE.trim().toUpperCase();
  let abortCode: Code | undefined;
  if (raw !== "") {
    const numeric = /^\d+$/.test(raw) ? Number(raw) : undefined;
    abortCode =
      numeric !== undefined ? (Object.values(CODES).includes(numeric) ? numeric : undefined) : CODES[raw];
    if (abortCode === undefined) {
      fail(
        `SHADOW_FAULT_ABORT_CODE: "${config.SHADOW_FAULT_ABORT_CODE}" is not a gRPC error status (one of ${Object.keys(CODES).join(", ")}, or 1-16)`,
      );
    }
  }
  if (config.SHADOW_FAULT_ABORT_PERCENT > 0 && abortCode === undefined) {
    fail(
      "SHADOW_FAULT_ABORT_PERCENT is set but SHADOW_FAULT_ABORT_CODE is empty: say which status to abort with",
    );
  }
  return {
    delayMs: config.SHADOW_FAULT_DELAY_MS,
    delayPercent: config.SHADOW_FAULT_DELAY_PERCENT,
    abortCode,
    abortPercent: config.SHADOW_FAULT_ABORT_PERCENT,
  };
}

/** Whether any fault is configured. */
export function faultsActive(faults: ShadowFaults | undefined): faults is ShadowFaults {
  return (
    faults !== undefined &&
    ((faults.delayMs > 0 && faults.delayPercent > 0) ||
      (faults.abortCode !== undefined && faults.abortPercent > 0))
  );
}

/** What happens to one mirrored call. */
export interface FaultDecision {
  delayMs: number;
  abort: Code | undefined;
}

/** Draws the fault of one call (delay and abort drawn independently, as Envoy does). */
export function decideFault(faults: ShadowFaults, random: () => number): FaultDecision {
  const hit = (percent: number) => percent >= 100 || (percent > 0 && random() * 100 < percent);
  return {
    delayMs: faults.delayMs > 0 && hit(faults.delayPercent) ? faults.delayMs : 0,
    abort: faults.abortCode !== undefined && hit(faults.abortPercent) ? faults.abortCode : undefined,
  };
}

/** The error an injected abort ends the call with. */
export function injectedAbort(code: Code): ConnectError {
  return new ConnectError("fault injected on the shadow route (abort)", code);
}

/** One line for the start-up log. */
export function describeFaults(faults: ShadowFaults): string {
  const parts: string[] = [];
  if (faults.delayMs > 0 && faults.delayPercent > 0) {
    parts.push(`delay ${faults.delayMs} ms on ${faults.delayPercent}%`);
  }
  if (faults.abortCode !== undefined && faults.abortPercent > 0) {
    parts.push(`abort with ${Code[faults.abortCode]} on ${faults.abortPercent}%`);
  }
  return parts.length > 0 ? parts.join(", ") : "none";
}
