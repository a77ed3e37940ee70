import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Feedback needs proof that the caller received the prediction (docs/architecture.md#feedback-is-evidence).
 * The edge (app-service) hands out `feedbackToken(secret, requestId, batchIndex)` with every prediction;
 * metrics-service, which holds the same secret, accepts SubmitFeedback only with a token that verifies. Request ids
 * are shown on the dashboard, so they are not secret; the token is.
 *
 * The token is HMAC-SHA256 over a domain tag, the request id and the batch index, base64url without padding
 * (43 characters). Rotating the secret invalidates every token handed out before.
 */

/** The shortest secret accepted (characters): 32 random characters carry well over 128 bits. */
export const MIN_FEEDBACK_SECRET_LENGTH = 32;

const DOMAIN = "shadowmesh-feedback/v1";

export function feedbackToken(secret: string, requestId: string, batchIndex: number): string {
  return createHmac("sha256", secret)
    .update(`${DOMAIN}\u0000${requestId}\u0000${batchIndex}`)
    .digest("base64url");
}

/** True when `token` is the token for (requestId, batchIndex) under `secret`; compared in constant time. */
export function verifyFeedbackToken(
  secret: string,
  requestId: string,
  batchIndex: number,
  token: string,
): boolean {
  if (secret === "" || token === "") {
    return false;
  }
  const expected = Buffer.from(feedbackToken(secret, requestId, batchIndex));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Why a configured secret is unusable, or undefined when it is fine (empty means feedback is disabled). */
export function feedbackSecretProblem(secret: string): string | undefined {
  if (secret === "") {
    return undefined;
  }
  if (secret.length < MIN_FEEDBACK_SECRET_LENGTH) {
    return `must be at least ${MIN_FEEDBACK_SECRET_LENGTH} characters (or empty to disable feedback), got ${secret.length}`;
  }
  return undefined;
}
