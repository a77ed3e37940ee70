import { describe, expect, it } from "vitest";
import { modelText, parseMessage, toWellFormed, truncateText } from "./parse-message.js";

const PLAIN = [
  "Return-Path: <bounce@example.com>",
  "Received: from mail.example.com by relay.example.org",
  "X-Spam-Status: Yes, hits=12.3",
  "X-Spam-Flag: YES",
  "Subject: Cheap watches",
  "Content-Type: text/plain; charset=us-ascii",
  "",
  "Buy now at http://example.com",
  "",
].join("\r\n");

const HTML_ONLY = [
  "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=",
  "X-Spam-Level: ***********",
  "MIME-Version: 1.0",
  'Content-Type: text/html; charset="utf-8"',
  "",
  "<html><body><p>Hello <b>friend</b></p><img src='x.png'><a href='http://example.com/a'>click</a></body></html>",
  "",
].join("\r\n");

describe("message parsing", () => {
  it("keeps the subject and the plain-text body, never the headers", async () => {
    const parsed = await parseMessage(PLAIN);
    const text = modelText(parsed, 20_000);
    expect(text).toBe("Cheap watches\n\nBuy now at http://example.com");
    expect(text).not.toMatch(/X-Spam|Received|Return-Path/i);
    expect(parsed.hasHtml).toBe(false);
  });

  it("converts an HTML-only body to text and decodes encoded subjects", async () => {
    const parsed = await parseMessage(HTML_ONLY);
    expect(parsed.subject).toBe("Grüße");
    expect(parsed.hasHtml).toBe(true);
    expect(parsed.bodyFromHtml).toBe(true);
    expect(parsed.body).toContain("Hello friend");
    expect(parsed.body).toContain("click [http://example.com/a]");
    expect(parsed.body).not.toMatch(/<[a-z]/i);
    expect(modelText(parsed, 20_000)).not.toMatch(/X-Spam/);
  });

  it("cuts texts to the input limit without splitting a surrogate pair", () => {
    expect(truncateText("abcdef", 4)).toBe("abcd");
    expect(truncateText("abc😀", 4)).toBe("abc");
    expect(truncateText("ab", 4)).toBe("ab");
  });

  it("replaces lone surrogates so the text is valid UTF-8", () => {
    expect(toWellFormed("a\uD800b\uDC00c😀")).toBe("a\uFFFDb\uFFFDc😀");
  });
});
