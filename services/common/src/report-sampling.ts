import { createHash } from "node:crypto";

/**
 * Consistent report sampling (README of metrics-service: "At scale"). Every reporter — the primary's and the
 * shadow's model-services and app-service's MIRROR records — keeps a request exactly when this function says so for
 * its request id, with the same rate, so a kept pair is always whole (both sides, every batch index) and ingest falls
 * to the rate's share of the traffic.
 *
 * The function: the first 4 bytes of SHA-256 of the request id (UTF-8), read as an unsigned big-endian integer,
 * divided by 2³², compared with the rate. SHA-256 because any side (another language, a proxy) can compute it, and
 * because request ids that are UUIDv7 start with a timestamp: a hash of the whole id, not of its leading bytes,
 * spreads them evenly.
 */
export function reportSampleValue(requestId: string): number {
  return createHash("sha256").update(requestId, "utf8").digest().readUInt32BE(0) / 2 ** 32;
}

/** Whether a request is reported at `rate` (0–1): 1 keeps everything, 0 nothing. */
export function reportSampled(requestId: string, rate: number): boolean {
  if (rate >= 1) {
    return true;
  }
  if (!(rate > 0)) {
    return false;
  }
  return reportSampleValue(requestId) < rate;
}
