import { type CorpusGroup, type Label, labelOfGroup } from "./corpus.js";
import { hashUnit } from "./rng.js";

export type Split = "train" | "validation" | "test";
export const SPLITS: readonly Split[] = ["train", "validation", "test"];

/** A parsed message ready for training: the model input text plus what the slices need. */
export interface ParsedRecord {
  id: string;
  group: CorpusGroup;
  checksum: string;
  text: string;
  hasHtml: boolean;
}

export interface Example extends ParsedRecord {
  label: Label;
  split: Split;
}

export interface SplitConfig {
  seed: number;
  /** Cumulative cut points of the hash unit: [0, train) train, [train, validation) validation, rest test. */
  trainFraction: number;
  validationFraction: number;
}

export interface DedupeStats {
  /** Messages in the corpus. */
  messages: number;
  /** Sets of two or more messages with the same normalised text. */
  duplicateGroups: number;
  /** Extra copies removed (messages minus distinct texts). */
  duplicatesRemoved: number;
  /** Duplicate sets whose copies a per-message split would have put into different splits. */
  groupsThatWouldStraddle: number;
  /** Duplicate sets with both ham and spam copies; all their copies are dropped. */
  conflictingGroups: number;
  conflictingMessagesDropped: number;
  /** Messages whose model text is empty (no subject, no body); dropped. */
  emptyDropped: number;
}

/**
 * The key under which texts count as identical: lower-cased with whitespace runs collapsed — the model lower-cases
 * and ignores whitespace layout between word tokens, so these copies are the same input to it.
 */
export function dedupeKey(text: string): string {
  return text.toLowerCase().replace(/\s+/gu, " ").trim();
}

/** The split of a message: a seeded hash of its checksum, so adding messages never moves existing ones. */
export function splitOf(checksum: string, config: SplitConfig): Split {
  const u = hashUnit(config.seed, checksum);
  if (u < config.trainFraction) return "train";
  if (u < config.trainFraction + config.validationFraction) return "validation";
  return "test";
}

/**
 * Removes duplicate texts and assigns splits. Each set of identical texts keeps one representative (the copy with
 * the smallest checksum) and the whole set takes that representative's split, so identical texts never straddle
 * splits. The cut points are the same for every stratum (corpus group), so each group is split in the same
 * proportions in expectation; `splitCounts` reports the realised counts.
 */
export function buildDataset(
  records: readonly ParsedRecord[],
  config: SplitConfig,
): { examples: Example[]; stats: DedupeStats } {
  const byKey = new Map<string, ParsedRecord[]>();
  let emptyDropped = 0;
  for (const r of records) {
    const key = dedupeKey(r.text);
    if (key === "") {
      emptyDropped += 1;
      continue;
    }
    const list = byKey.get(key);
    if (list) list.push(r);
    else byKey.set(key, [r]);
  }
  const examples: Example[] = [];
  let duplicateGroups = 0;
  let duplicatesRemoved = 0;
  let groupsThatWouldStraddle = 0;
  let conflictingGroups = 0;
  let conflictingMessagesDropped = 0;
  for (const copies of byKey.values()) {
    copies.sort((a, b) => (a.checksum < b.checksum ? -1 : a.checksum > b.checksum ? 1 : 0));
    const rep = copies[0];
    if (rep === undefined) continue;
    if (copies.length > 1) {
      duplicateGroups += 1;
      duplicatesRemoved += copies.length - 1;
      if (new Set(copies.map((c) => splitOf(c.checksum, config))).size > 1) groupsThatWouldStraddle += 1;
      if (new Set(copies.map((c) => labelOfGroup(c.group))).size > 1) {
        conflictingGroups += 1;
        conflictingMessagesDropped += copies.length;
        continue;
      }
    }
    examples.push({ ...rep, label: labelOfGroup(rep.group), split: splitOf(rep.checksum, config) });
  }
  // A stable order that does not depend on Map iteration: by group, then id.
  examples.sort((a, b) =>
    a.group < b.group ? -1 : a.group > b.group ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
  );
  return {
    examples,
    stats: {
      messages: records.length,
      duplicateGroups,
      duplicatesRemoved,
      groupsThatWouldStraddle,
      conflictingGroups,
      conflictingMessagesDropped,
      emptyDropped,
    },
  };
}

/** Realised counts per split and corpus group (the stratification check). */
export function splitCounts(examples: readonly Example[]): Record<Split, Record<string, number>> {
  const counts: Record<Split, Record<string, number>> = { train: {}, validation: {}, test: {} };
  for (const e of examples) {
    const bucket = counts[e.split];
    bucket[e.group] = (bucket[e.group] ?? 0) + 1;
    bucket.total = (bucket.total ?? 0) + 1;
  }
  return counts;
}
