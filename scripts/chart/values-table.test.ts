// charts/shadowmesh/README.md's values table is generated from values.yaml and kept in step; every value has a
// `# --` description.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  descriptionOf,
  END,
  expectedReadme,
  REGENERATE,
  renderTable,
  replaceTable,
  START,
  VALUES_PATH,
  valueRows,
} from "./values-table.js";

describe("charts/shadowmesh/README.md", () => {
  it("has the values table generated from values.yaml", () => {
    const { current, expected } = expectedReadme();
    expect(
      current === expected,
      `the README's values table is out of step with values.yaml: run ${REGENERATE}`,
    ).toBe(true);
  });

  it("documents every value with a # -- comment", () => {
    const undocumented = valueRows(readFileSync(VALUES_PATH, "utf8"))
      .filter((r) => !r.description)
      .map((r) => r.key);
    expect(undocumented, `add a "# -- description" comment above each of these in values.yaml`).toEqual([]);
  });

  it("lists every leaf of values.yaml (no value is dropped from the table)", () => {
    const values = parse(readFileSync(VALUES_PATH, "utf8"));
    const keys = valueRows(readFileSync(VALUES_PATH, "utf8")).map((r) => r.key);
    const leaves: string[] = [];
    const walk = (v: unknown, path: string) => {
      if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 0) {
        for (const [k, c] of Object.entries(v)) walk(c, path ? `${path}.${k}` : k);
      } else leaves.push(path);
    };
    walk(values, "");
    for (const leaf of leaves) {
      expect(
        keys.some((k) => leaf === k || leaf.startsWith(`${k}.`)),
        `${leaf} is in no row`,
      ).toBe(true);
    }
  });
});

describe("the generator", () => {
  const VALUES = `# A file header that is not a description.

# -- Top-level scalar.
name: ""
# -- A section: its children are documented, so it is no row itself.
section:
  # -- First child (yaml attaches this comment to the map).
  first: 1
  # -- Second child, a description
  # continued on the next line | with a pipe.
  second: 2.5
  # An ordinary comment, then the marker:
  # -- Third child.
  third: true
# -- A map of undocumented children is one row.
resources:
  requests:
    cpu: 100m
# -- An empty list.
hosts: []
undocumented: x
section2:
  # -- Documented.
  a: "\`tick\`"
  b: null
`;

  it("makes one row per documented leaf, section children by their path, with helm-docs types and defaults", () => {
    expect(valueRows(VALUES)).toEqual([
      { key: "name", type: "string", default: '""', description: "Top-level scalar." },
      {
        key: "section.first",
        type: "int",
        default: "1",
        description: "First child (yaml attaches this comment to the map).",
      },
      {
        key: "section.second",
        type: "float",
        default: "2.5",
        description: "Second child, a description continued on the next line | with a pipe.",
      },
      { key: "section.third", type: "bool", default: "true", description: "Third child." },
      {
        key: "resources",
        type: "object",
        default: '{"requests": {"cpu": "100m"}}',
        description: "A map of undocumented children is one row.",
      },
      { key: "hosts", type: "list", default: "[]", description: "An empty list." },
      { key: "undocumented", type: "string", default: '"x"', description: undefined },
      { key: "section2.a", type: "string", default: '"`tick`"', description: "Documented." },
      { key: "section2.b", type: "string", default: "null", description: undefined },
    ]);
  });

  it("escapes pipes and backticks so the Markdown table stays a table", () => {
    const table = renderTable(valueRows(VALUES));
    expect(table).toContain("continued on the next line \\| with a pipe.");
    expect(table).toContain('| `section2.a` | string | ``"`tick`"`` | Documented. |');
    for (const line of table.trimEnd().split("\n")) expect(line.split(/(?<!\\)\|/).length).toBe(6);
  });

  it("takes the text after the last -- marker", () => {
    expect(descriptionOf(" header\n\n -- one\n more")).toBe("one more");
    expect(descriptionOf(" no marker here")).toBeUndefined();
    expect(descriptionOf(" --")).toBeUndefined();
    expect(descriptionOf(" --flag is not a marker")).toBeUndefined();
  });

  it("replaces only what is between the markers, and refuses a README without them", () => {
    const readme = `# T\n\nintro\n${START}\nold table\n${END}\noutro\n`;
    expect(replaceTable(readme, "| new |\n")).toBe(`# T\n\nintro\n${START}\n| new |\n${END}\noutro\n`);
    expect(() => replaceTable("# no markers\n", "x")).toThrow(/needs the markers/);
  });

  it("sees a README whose table lags behind values.yaml", () => {
    const { current } = expectedReadme();
    const edited = current.replace(/\| `mirrorPercentage` \| [^\n]*\n/, "");
    expect(edited).not.toBe(current);
    const rows = valueRows(readFileSync(VALUES_PATH, "utf8"));
    expect(replaceTable(edited, renderTable(rows))).toBe(current);
  });
});
