import {
  CheckOutcomeSchema,
  Decision,
  DecisionSchema,
  RoleSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { describe, expect, it } from "vitest";
import { enumName, outcomeWord } from "./cli/format-report.js";
import { DECISION_NAMES, roleName } from "./prometheus.js";

/** Names shown for enum values come from the generated descriptors: a value added to the proto cannot be forgotten. */
describe("enum names", () => {
  it("gives the verdict gauge one series per decision of the generated enum", () => {
    const decisions = DecisionSchema.values.filter((v) => v.number !== Decision.UNSPECIFIED);
    expect(DECISION_NAMES.map(([, name]) => name)).toEqual(decisions.map((v) => v.localName));
    expect(DECISION_NAMES.length).toBeGreaterThanOrEqual(4);
    expect(new Set(DECISION_NAMES.map(([d]) => d)).size).toBe(DECISION_NAMES.length);
  });

  it("names every role, decision and outcome, each differently", () => {
    const roles = RoleSchema.values.map((v) => roleName(v.number));
    expect(roles).toEqual(RoleSchema.values.map((v) => v.localName.toLowerCase()));
    expect(roles).toContain("primary");
    expect(roles).toContain("shadow");
    const decisions = DecisionSchema.values.map((v) => enumName(DecisionSchema, v.number));
    expect(decisions).toContain("PROMOTE");
    const outcomes = CheckOutcomeSchema.values.map((v) => outcomeWord(v.number));
    for (const names of [roles, decisions, outcomes]) {
      expect(names.every((name) => name.length > 0 && !/^\d+$/.test(name))).toBe(true);
      expect(new Set(names).size).toBe(names.length);
    }
    expect(outcomes).toContain("SKIP");
    expect(outcomes).toContain("FAIL");
  });
});
