import { describe, expect, it } from "vitest";
import { feedbackSecretProblem, feedbackToken, verifyFeedbackToken } from "./feedback-token.js";

const secret = "s".repeat(40);

describe("feedback tokens", () => {
  it("verifies the token issued for the same request id and batch index", () => {
    const token = feedbackToken(secret, "req-1", 0);
    expect(token).toMatch(/^[\w-]{43}$/);
    expect(verifyFeedbackToken(secret, "req-1", 0, token)).toBe(true);
  });

  it("refuses another request id, batch index, secret, a truncated or an empty token", () => {
    const token = feedbackToken(secret, "req-1", 0);
    expect(verifyFeedbackToken(secret, "req-2", 0, token)).toBe(false);
    expect(verifyFeedbackToken(secret, "req-1", 1, token)).toBe(false);
    expect(verifyFeedbackToken("t".repeat(40), "req-1", 0, token)).toBe(false);
    expect(verifyFeedbackToken(secret, "req-1", 0, token.slice(0, 42))).toBe(false);
    expect(verifyFeedbackToken(secret, "req-1", 0, "")).toBe(false);
    expect(verifyFeedbackToken("", "req-1", 0, feedbackToken("", "req-1", 0))).toBe(false);
  });

  it("does not let a request id containing the separator collide with another batch index", () => {
    expect(feedbackToken(secret, "a\u00001", 0)).not.toBe(feedbackToken(secret, "a", 10));
  });

  it("accepts an empty secret (feedback disabled) and refuses a short one", () => {
    expect(feedbackSecretProblem("")).toBeUndefined();
    expect(feedbackSecretProblem(secret)).toBeUndefined();
    expect(feedbackSecretProblem("short")).toMatch(/at least 32 characters/);
  });
});
