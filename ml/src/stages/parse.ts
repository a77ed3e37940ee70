import { MAX_TEXT_CHARS } from "../constants.js";
import type { RawMessage } from "../corpus.js";
import type { ParsedRecord } from "../dataset.js";
import { modelText, parseMessage } from "../parse-message.js";

/** The parse stage: every raw RFC 822 message → the text the model sees (Subject + body), plus its group and checksum. */
export async function parseCorpus(
  raw: readonly RawMessage[],
  progress: (message: string, fraction: number) => void = () => {},
): Promise<ParsedRecord[]> {
  const out: ParsedRecord[] = [];
  for (const [i, m] of raw.entries()) {
    const p = await parseMessage(m.text);
    out.push({
      id: m.id,
      group: m.group,
      checksum: m.checksum.value,
      text: modelText(p, MAX_TEXT_CHARS),
      hasHtml: p.hasHtml,
    });
    if (i % 250 === 0) progress(`${i}/${raw.length} messages`, i / raw.length);
  }
  return out;
}
