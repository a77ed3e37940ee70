import { describe, expect, it } from "vitest";
import type { CorpusGroup } from "./corpus.js";
import { buildDataset, dedupeKey, type ParsedRecord, SPLITS, splitOf } from "./dataset.js";
import { createRng } from "./rng.js";

const config = { seed: 7, trainFraction: 0.6, validationFraction: 0.2 };

function records(n: number, seed: number): ParsedRecord[] {
  const rng = createRng(seed);
  const groups: CorpusGroup[] = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"];
  return Array.from({ length: n }, (_, i) => ({
    id: String(i).padStart(5, "0"),
    group: groups[i % groups.length] as CorpusGroup,
    checksum:
      Math.floor(rng.next() * 2 ** 48)
        .toString(16)
        .padStart(12, "0") + String(seed),
    text: `message ${seed}-${i} ${rng.next()}`,
    hasHtml: false,
  }));
}

describe("the dataset split", () => {
  it("is a function of the seed and the checksum only, so adding messages moves none of the others", () => {
    const base = records(400, 1);
    const before = buildDataset(base, config).examples;
    const after = buildDataset([...records(300, 2), ...base], config).examples;
    const splitAfter = new Map(after.map((e) => [e.checksum, e.split]));
    for (const e of before) expect(splitAfter.get(e.checksum)).toBe(e.split);
  });

  it("changes with the seed", () => {
    const base = records(200, 3);
    const a = base.map((r) => splitOf(r.checksum, config));
    const b = base.map((r) => splitOf(r.checksum, { ...config, seed: 8 }));
    expect(a).not.toEqual(b);
  });

  it("gives every corpus group roughly the configured proportions", () => {
    const { examples } = buildDataset(records(5000, 4), config);
    for (const group of ["easy-ham-1", "hard-ham-1", "spam-2"]) {
      const inGroup = examples.filter((e) => e.group === group);
      const share = (s: string) => inGroup.filter((e) => e.split === s).length / inGroup.length;
      expect(share("train")).toBeGreaterThan(0.55);
      expect(share("train")).toBeLessThan(0.65);
      expect(share("validation")).toBeGreaterThan(0.16);
      expect(share("test")).toBeGreaterThan(0.16);
    }
  });

  it("keeps one copy of identical texts, so duplicates can never straddle splits, and counts them", () => {
    const base = records(50, 5);
    const copies = base.slice(0, 10).map((r, i) => ({
      ...r,
      id: `copy-${i}`,
      checksum: `ff${r.checksum}`,
      text: `  ${r.text.toUpperCase()}\n`,
    }));
    const { examples, stats } = buildDataset([...base, ...copies], config);
    expect(stats.duplicatesRemoved).toBe(10);
    expect(stats.duplicateGroups).toBe(10);
    expect(examples).toHaveLength(50);
    const keys = examples.map((e) => dedupeKey(e.text));
    expect(new Set(keys).size).toBe(keys.length);
    for (const s of SPLITS) expect(examples.some((e) => e.split === s)).toBe(true);
  });

  it("drops identical texts that carry both labels", () => {
    const ham = { ...records(1, 6)[0], group: "easy-ham-1", text: "same words" } as ParsedRecord;
    const spam = { ...ham, id: "x", group: "spam-1", checksum: "abc" } as ParsedRecord;
    const { examples, stats } = buildDataset([ham, spam], config);
    expect(examples).toHaveLength(0);
    expect(stats.conflictingGroups).toBe(1);
    expect(stats.conflictingMessagesDropped).toBe(2);
  });
});
