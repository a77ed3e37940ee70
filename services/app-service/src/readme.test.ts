import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { settingsTable } from "@shadowmesh/common";
import { describe, expect, it } from "vitest";
import { PREFIX, spec } from "./config.js";

const README = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "README.md");

describe("README", () => {
  it("lists every setting with the default and help that --help prints", async () => {
    const text = await readFile(README, "utf8");
    const block = text.split("<!-- settings:start -->\n")[1]?.split("\n<!-- settings:end -->")[0];
    // Compare cells, not bytes: a formatter may pad Markdown tables.
    const cells = (table: string | undefined) =>
      (table ?? "")
        .split("\n")
        .filter((line) => !/^\|[\s|:-]+\|$/.test(line))
        .map((line) => line.split(/(?<!\\)\|/).map((cell) => cell.trim()));
    expect(cells(block)).toEqual(cells(settingsTable(PREFIX, spec)));
  });
});
