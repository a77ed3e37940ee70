import { Code } from "@connectrpc/connect";
import {
  CheckOutcome,
  CheckOutcomeSchema,
  Decision,
  Role,
  RoleSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { labelName } from "../lib/format";

/**
 * The words the Shadow views use for the contract's enums. Names come from the generated descriptors and connect's
 * `Code`; only the sentences for humans are written here, in maps typed `Record<Enum, …>` so that a value added to the
 * contract fails to compile until it has its words (and wording.test.tsx checks every descriptor value at run time).
 */

export interface DecisionWording {
  text: string;
  className: string;
  meaning: string;
}

export const DECISIONS: Readonly<Record<Decision, DecisionWording>> = {
  [Decision.UNSPECIFIED]: {
    text: "No verdict",
    className: "decision-none",
    meaning: "No decision was made.",
  },
  [Decision.INSUFFICIENT_DATA]: {
    text: "Insufficient data",
    className: "decision-none",
    meaning: "There is not enough data to decide yet.",
  },
  [Decision.PROMOTE]: {
    text: "Promote",
    className: "decision-promote",
    meaning: "The shadow model meets every threshold and can replace the primary.",
  },
  [Decision.HOLD]: {
    text: "Hold",
    className: "decision-hold",
    meaning: "Keep observing: the shadow is neither clearly better nor clearly worse.",
  },
  [Decision.ROLLBACK]: {
    text: "Roll back",
    className: "decision-rollback",
    meaning: "The shadow model is clearly worse than the primary and should be removed.",
  },
};

/** The wording of a decision; a number the contract does not know (a newer server) reads as "No verdict". */
export function decisionWording(decision: Decision | undefined): DecisionWording {
  return DECISIONS[decision ?? Decision.UNSPECIFIED] ?? DECISIONS[Decision.UNSPECIFIED];
}

/** "pass", "warn", "fail", "skipped" (the descriptor's value name, lower case); "—" when unspecified or unknown. */
export function outcomeName(outcome: CheckOutcome): string {
  if (outcome === CheckOutcome.UNSPECIFIED) {
    return "—";
  }
  const value = CheckOutcomeSchema.value[outcome];
  return value ? value.localName.toLowerCase() : "—";
}

/** "Primary", "Shadow" (the descriptor's value name); "Unknown role" otherwise. */
export function roleName(role: Role): string {
  const value = role === Role.UNSPECIFIED ? undefined : RoleSchema.value[role];
  return value ? labelName(value.localName.toLowerCase()) : "Unknown role";
}

/**
 * The canonical gRPC name of a status code ("DEADLINE_EXCEEDED"), from connect's `Code` ("DeadlineExceeded"). gRPC
 * spells code 1 CANCELLED where connect's enum says Canceled; 0 (OK) is not in `Code`.
 */
export function grpcCodeName(code: number): string {
  if (code === 0) {
    return "OK";
  }
  if (code === Code.Canceled) {
    return "CANCELLED";
  }
  const name = (Code as unknown as Record<number, string | undefined>)[code];
  return name ? name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase() : `code ${code}`;
}
