// Generates the values table of charts/shadowmesh/README.md from charts/shadowmesh/values.yaml, helm-docs style:
// the comment line `# -- description` (continued by the comment lines after it) above a key describes it.
//
//   npx tsx scripts/chart/values-table.ts           # rewrites the table between the markers in the README
//   npx tsx scripts/chart/values-table.ts --check   # exits 1 when the README's table is out of step
//
// Rows: a map whose children carry `# --` comments is a section (its own comment is not a row; each child is
// documented on its own); any other value (scalar, list, empty map, or a map of undocumented children, e.g.
// `resources`) is one row with its whole default. Every row must have a description.
import { readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { isMap, isPair, isScalar, isSeq, type Node, type Pair, parseDocument, type YAMLMap } from "yaml";
import { REPO_ROOT } from "./helm.js";

export const VALUES_PATH = join(REPO_ROOT, "charts/shadowmesh/values.yaml");
export const README_PATH = join(REPO_ROOT, "charts/shadowmesh/README.md");
export const START = "<!-- values-table:start -->";
export const END = "<!-- values-table:end -->";
export const REGENERATE = "npx tsx scripts/chart/values-table.ts";

export interface ValueRow {
  key: string;
  type: string;
  default: string;
  description: string | undefined;
}

/** The `# --` description in a comment block: the text after the last `--` marker, continuation lines joined. */
export function descriptionOf(comment: string | null | undefined): string | undefined {
  if (!comment) return undefined;
  const lines = comment.split("\n");
  let start = -1;
  lines.forEach((line, i) => {
    if (/^\s*--(\s|$)/.test(line)) start = i;
  });
  if (start < 0) return undefined;
  const text = [(lines[start] as string).replace(/^\s*--\s?/, ""), ...lines.slice(start + 1)]
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .join(" ")
    .trim();
  return text === "" ? undefined : text;
}

function typeOf(value: unknown): string {
  if (value === null || value === undefined) return "string";
  if (Array.isArray(value)) return "list";
  if (typeof value === "object") return "object";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "float";
  return "string";
}

/** Compact JSON with a space after `:` and `,` (helm-docs style). */
function show(value: unknown): string {
  if (value === undefined) return "null";
  if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}: ${show(v)}`)
      .join(", ")}}`;
  }
  return JSON.stringify(value);
}

function pairComment(pair: Pair, parent: YAMLMap, index: number): string | undefined {
  const parts: string[] = [];
  // yaml attaches the comment above a nested map's first key to the map node itself.
  if (index === 0 && parent.commentBefore) parts.push(parent.commentBefore);
  const key = pair.key as Node | null;
  if (key && "commentBefore" in key && key.commentBefore) parts.push(key.commentBefore);
  return parts.join("\n") || undefined;
}

function hasDocumentedChild(map: YAMLMap): boolean {
  return map.items.some((p, i) => isPair(p) && descriptionOf(pairComment(p as Pair, map, i)) !== undefined);
}

/** Every documented value (and every value that should be) of a values.yaml text, in file order. */
export function valueRows(valuesYaml: string): ValueRow[] {
  const doc = parseDocument(valuesYaml);
  if (doc.errors.length > 0) throw new Error(`values.yaml: ${doc.errors[0]?.message}`);
  const rows: ValueRow[] = [];
  const walk = (map: YAMLMap, prefix: string) => {
    map.items.forEach((item, i) => {
      const pair = item as Pair;
      const name = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const key = prefix + (/^[A-Za-z0-9_-]+$/.test(name) ? name : `"${name}"`);
      const value = pair.value as Node | null;
      if (isMap(value) && value.items.length > 0 && hasDocumentedChild(value)) {
        walk(value, `${key}.`);
        return;
      }
      const js = value && (isMap(value) || isSeq(value) || isScalar(value)) ? value.toJSON() : null;
      rows.push({
        key,
        type: typeOf(js),
        default: show(js),
        description: descriptionOf(pairComment(pair, map, i)),
      });
    });
  };
  if (!isMap(doc.contents)) throw new Error("values.yaml is not a map");
  walk(doc.contents, "");
  return rows;
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function code(text: string): string {
  const fence = text.includes("`") ? "``" : "`";
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${fence}${pad}${cell(text)}${pad}${fence}`;
}

/** The Markdown table (no markers, trailing newline). */
export function renderTable(rows: ValueRow[]): string {
  const lines = ["| Key | Type | Default | Description |", "|---|---|---|---|"];
  for (const r of rows) {
    lines.push(`| ${code(r.key)} | ${r.type} | ${code(r.default)} | ${cell(r.description ?? "")} |`);
  }
  return `${lines.join("\n")}\n`;
}

/** The README with the table between the markers replaced. */
export function replaceTable(readme: string, table: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < 0 || end < start) {
    throw new Error(`${relative(REPO_ROOT, README_PATH)} needs the markers ${START} and ${END}`);
  }
  return `${readme.slice(0, start + START.length)}\n${table}${readme.slice(end)}`;
}

/** The README as it should be, from the current values.yaml. */
export function expectedReadme(): { current: string; expected: string; rows: ValueRow[] } {
  const rows = valueRows(readFileSync(VALUES_PATH, "utf8"));
  const current = readFileSync(README_PATH, "utf8");
  return { current, expected: replaceTable(current, renderTable(rows)), rows };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { current, expected, rows } = expectedReadme();
  const undocumented = rows.filter((r) => !r.description).map((r) => r.key);
  if (undocumented.length > 0)
    console.error(`values without a "# --" description: ${undocumented.join(", ")}`);
  if (process.argv.includes("--check")) {
    if (current !== expected) {
      console.error(
        `${relative(REPO_ROOT, README_PATH)}: the values table is out of step; run ${REGENERATE}`,
      );
      process.exit(1);
    }
    process.exit(undocumented.length > 0 ? 1 : 0);
  }
  if (current !== expected) writeFileSync(README_PATH, expected);
  console.log(
    `${relative(REPO_ROOT, README_PATH)}: ${rows.length} values${current === expected ? " (unchanged)" : ""}`,
  );
}
