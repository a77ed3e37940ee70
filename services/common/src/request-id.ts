import { randomUUID } from "node:crypto";
import { v7 as uuidv7 } from "uuid";

/** The metadata key that carries the request id: Envoy copies it into mirrored requests, so it is the join key. */
export const REQUEST_ID_HEADER = "x-request-id";

/**
 * The metadata key that carries the caller's own request id once the edge has replaced `x-request-id` with a join
 * key of its own: kept for correlating logs across systems, never used to join records.
 */
export const CLIENT_REQUEST_ID_HEADER = "x-client-request-id";

const VALID = /^[\w.:-]{1,128}$/;

/** Returns the incoming request id if it is well-formed, else a new UUID. */
export function requestIdFrom(value: string | null | undefined): string {
  return value && VALID.test(value) ? value : randomUUID();
}

/**
 * A new join key: a UUIDv7 (RFC 9562), time-ordered so that ids sort and index by creation time, with 74 random
 * bits so that no caller can guess or repeat one. The edge (app-service) makes one for every Predict/PredictBatch.
 */
export function newRequestId(): string {
  return uuidv7();
}

/** The longest client request id kept (characters). */
export const MAX_CLIENT_REQUEST_ID_LENGTH = 128;

/**
 * Why a caller's own request id is unusable, or undefined when it is fine: 1–128 printable ASCII characters
 * (0x21–0x7e), no spaces or control characters. Anything else is refused with INVALID_ARGUMENT at the edge rather
 * than silently replaced, so that the caller learns why its id does not show up in the logs.
 */
export function clientRequestIdProblem(value: string): string | undefined {
  if (value.length === 0) {
    return "is empty";
  }
  if (value.length > MAX_CLIENT_REQUEST_ID_LENGTH) {
    return `is ${value.length} characters long; at most ${MAX_CLIENT_REQUEST_ID_LENGTH} are allowed`;
  }
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x21 || code > 0x7e) {
      return `contains a character that is not printable ASCII (position ${i + 1}); use 1-${MAX_CLIENT_REQUEST_ID_LENGTH} printable ASCII characters without spaces`;
    }
  }
  return undefined;
}
