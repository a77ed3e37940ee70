// @vitest-environment node
import { Code } from "@connectrpc/connect";
import {
  type CheckOutcome,
  CheckOutcomeSchema,
  DecisionSchema,
  Role,
  RoleSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { describe, expect, it } from "vitest";
import { DECISIONS, decisionWording, grpcCodeName, outcomeName, roleName } from "./wording";

describe("the words for the contract's enums", () => {
  it("has its own words for every decision the generated descriptor lists", () => {
    const texts = new Set<string>();
    for (const value of DecisionSchema.values) {
      const wording = DECISIONS[value.number as keyof typeof DECISIONS];
      expect(wording, `DECISION_${value.localName} has no wording`).toBeDefined();
      expect(wording.meaning).not.toBe("");
      texts.add(wording.text);
    }
    expect(texts.size).toBe(DecisionSchema.values.length);
    expect(Object.keys(DECISIONS)).toHaveLength(DecisionSchema.values.length);
    expect(decisionWording(99 as never).text).toBe("No verdict");
  });

  it("names every check outcome and role from the descriptor", () => {
    expect(CheckOutcomeSchema.values.map((value) => outcomeName(value.number))).toEqual([
      "—",
      "pass",
      "warn",
      "fail",
      "skipped",
    ]);
    expect(RoleSchema.values.map((value) => roleName(value.number))).toEqual([
      "Unknown role",
      "Primary",
      "Shadow",
    ]);
    expect(roleName(Role.SHADOW)).toBe("Shadow");
    expect(outcomeName(42 as CheckOutcome)).toBe("—");
  });

  it("spells every gRPC status code the canonical way", () => {
    const names = [0, ...Object.values(Code).filter((code) => typeof code === "number")].map(grpcCodeName);
    expect(names).toEqual([
      "OK",
      "CANCELLED",
      "UNKNOWN",
      "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED",
      "NOT_FOUND",
      "ALREADY_EXISTS",
      "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION",
      "ABORTED",
      "OUT_OF_RANGE",
      "UNIMPLEMENTED",
      "INTERNAL",
      "UNAVAILABLE",
      "DATA_LOSS",
      "UNAUTHENTICATED",
    ]);
    expect(grpcCodeName(99)).toBe("code 99");
  });
});
