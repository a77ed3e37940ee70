import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DEFAULT_PORTS, meshUrls } from "./lib/mesh.js";

/**
 * docs/architecture.md is where code comments send readers for the reasons behind a design. Every
 * `architecture.md#anchor` in a source file or README must name a heading that exists there, and nothing may point
 * to the old, never-written `ARCHITECTURE.md`. Reads files only (no git, no build): well under a second.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DOC = path.join(ROOT, "docs/architecture.md");
/** Directories that hold no hand-written source: installed, generated, built or run-time files. */
const SKIP = new Set(["node_modules", "dist", ".git", ".data", ".tools", ".test-output", "gen", "coverage"]);
const SOURCE = /\.(ts|tsx|mts|mjs|js|md)$/;
const LINK = /architecture\.md#([\w-]+)/g;

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered -1, -2 … */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) {
      fenced = !fenced;
      continue;
    }
    const heading = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (fenced || !heading?.[1]) {
      continue;
    }
    const slug = heading[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP.has(entry.name)) {
        sourceFiles(path.join(dir, entry.name), out);
      }
    } else if (SOURCE.test(entry.name)) {
      out.push(path.join(dir, entry.name));
    }
  }
  return out;
}

describe("links to docs/architecture.md", () => {
  const anchors = headingAnchors(readFileSync(DOC, "utf8"));
  const files = sourceFiles(ROOT).filter((file) => !file.endsWith("scripts/docs.test.ts"));
  const links = files.flatMap((file) =>
    [...readFileSync(file, "utf8").matchAll(LINK)].map((match) => ({
      file: path.relative(ROOT, file),
      anchor: match[1] ?? "",
    })),
  );

  it("finds the links the code comments make (the walk reaches services/ and scripts/)", () => {
    const linking = [...new Set(links.map((link) => link.file))];
    expect(linking).toContain("README.md");
    expect(linking.some((file) => file.startsWith("services/"))).toBe(true);
    expect(linking.some((file) => file.startsWith("scripts/"))).toBe(true);
  });

  it("every anchor names a heading of docs/architecture.md", () => {
    const broken = links.filter((link) => !anchors.has(link.anchor));
    expect(broken, `headings: ${[...anchors].join(", ")}`).toEqual([]);
  });

  it("every link inside docs/architecture.md to one of its own sections names a heading", () => {
    const own = [...readFileSync(DOC, "utf8").matchAll(/\]\(#([\w-]+)\)/g)].map((match) => match[1] ?? "");
    expect(own.length).toBeGreaterThan(0);
    expect(own.filter((anchor) => !anchors.has(anchor))).toEqual([]);
  });

  it("nothing points to the old ARCHITECTURE.md", () => {
    const stale = files
      .filter((file) => readFileSync(file, "utf8").includes("ARCHITECTURE.md"))
      .map((file) => path.relative(ROOT, file));
    expect(stale).toEqual([]);
  });

  it("computes GitHub's anchors (punctuation, repeats, code blocks)", () => {
    expect([
      ...headingAnchors("# A: b's (c)\n## Why grpc-js\n```\n# not a heading\n```\n## Why grpc-js\n"),
    ]).toEqual(["a-bs-c", "why-grpc-js", "why-grpc-js-1"]);
  });
});

describe("relative links in the root README and docs/architecture.md", () => {
  for (const doc of ["README.md", "docs/architecture.md"]) {
    it(`${doc}: every linked file exists and every linked section has its heading`, () => {
      const text = readFileSync(path.join(ROOT, doc), "utf8");
      const targets = [...text.matchAll(/\]\(([^)\s]+)\)/g)]
        .map((match) => match[1] ?? "")
        .filter((target) => !/^[a-z]+:/.test(target));
      expect(targets.length).toBeGreaterThan(5);
      const broken = targets.filter((target) => {
        const [file = "", anchor] = target.split("#");
        const resolved =
          file === "" ? path.join(ROOT, doc) : path.resolve(path.dirname(path.join(ROOT, doc)), file);
        if (!existsSync(resolved)) {
          return true;
        }
        return anchor !== undefined && resolved.endsWith(".md")
          ? !headingAnchors(readFileSync(resolved, "utf8")).has(anchor)
          : false;
      });
      expect(broken).toEqual([]);
    });
  }
});

describe("the root README", () => {
  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");

  it("shows the table `npm start` prints, row for row (mesh.meshUrls with the default ports and both candidates)", () => {
    const block = /Shadowmesh is running[^\n]*\n\n([\s\S]*?)\n\n/.exec(readme)?.[1];
    expect(block, "the README's npm start output block").toBeDefined();
    const rows = (block ?? "").split("\n").map((line) => line.trim().split(/\s{2,}/));
    const expected = meshUrls("127.0.0.1", DEFAULT_PORTS, ["shadow", "lite"]).map((row) => [
      row.name,
      row.url,
      row.what,
    ]);
    expect(rows).toEqual(expected);
  });

  it("lists exactly the alerts the rules file defines", () => {
    const rules = readFileSync(
      path.join(ROOT, "charts/shadowmesh/files/prometheus/shadowmesh.rules.yaml"),
      "utf8",
    );
    const defined = [...rules.matchAll(/- alert: (\w+)/g)].map((match) => match[1]).sort();
    const listed = [
      ...new Set([...readme.matchAll(/\[(Shadowmesh\w+)\]\(/g)].map((match) => match[1])),
    ].sort();
    expect(defined.length).toBeGreaterThan(5);
    expect(listed).toEqual(defined);
  });

  it("lists every npm script it tells the reader to run", () => {
    const scripts = Object.keys(
      (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: object }).scripts,
    );
    const mentioned = [...readme.matchAll(/npm run ([\w:-]+)/g)].map((match) => match[1]);
    expect(mentioned.length).toBeGreaterThan(5);
    expect(mentioned.filter((name) => !scripts.includes(name ?? ""))).toEqual([]);
  });
});
