import { randomUUID } from "node:crypto";

/** The metadata key that carries the request id: Envoy copies it into mirrored requests, so it is the join key. */
export const REQUEST_ID_HEADER = "x-request-id";

const VALID = /^[\w.:-]{1,128}$/;

/** Returns the incoming request id if it is well-formed, else a new UUID. */
export function requestIdFrom(value: string | null | undefined): string {
  return value && VALID.test(value) ? value : randomUUID();
}
