import { convert } from "html-to-text";
import { simpleParser } from "mailparser";

/** What the model sees of a message: what a user would paste (subject and body), never the headers. */
export interface ParsedMessage {
  subject: string;
  body: string;
  /** The message had an HTML body (whether or not it also had a plain-text alternative). */
  hasHtml: boolean;
  /** The body we kept came from the HTML part (there was no usable plain-text part). */
  bodyFromHtml: boolean;
}

/**
 * Parses one RFC 822 message with mailparser. The body is the text/plain part when there is one, otherwise the
 * HTML part converted to text with html-to-text. Attachments and all headers except Subject are dropped: headers
 * such as Received or X-Spam-* would leak the label and are not something a user pastes.
 */
export async function parseMessage(raw: string): Promise<ParsedMessage> {
  const mail = await simpleParser(raw, {
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipTextLinks: true,
    skipImageLinks: true,
  });
  const html = typeof mail.html === "string" ? mail.html : "";
  const plain = (mail.text ?? "").trim();
  let body = plain;
  let bodyFromHtml = false;
  if (body === "" && html !== "") {
    body = htmlToPlainText(html).trim();
    bodyFromHtml = true;
  }
  return { subject: (mail.subject ?? "").trim(), body, hasHtml: html !== "", bodyFromHtml };
}

export function htmlToPlainText(html: string): string {
  return convert(html, {
    wordwrap: false,
    selectors: [
      { selector: "img", format: "skip" },
      { selector: "a", options: { hideLinkHrefIfSameAsText: true } },
    ],
  });
}

/**
 * The model input for a message: subject, a blank line, body. Lone surrogates are replaced (the string must be
 * valid UTF-8 once it reaches ONNX Runtime) and the text is cut to `maxTextChars` UTF-16 code units without
 * splitting a surrogate pair — the same limit the serving side enforces.
 */
export function modelText(parsed: Pick<ParsedMessage, "subject" | "body">, maxTextChars: number): string {
  const joined = parsed.subject === "" ? parsed.body : `${parsed.subject}\n\n${parsed.body}`;
  return truncateText(toWellFormed(joined), maxTextChars);
}

export function truncateText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  let end = maxChars;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return text.slice(0, end);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Replaces lone surrogates with U+FFFD, like ES2024 `String.prototype.toWellFormed`. */
export function toWellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, "\uFFFD");
}
