import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** ml/src: the root every module path here is relative to (posix separators). */
export const SRC_DIR = fileURLToPath(new URL("./", import.meta.url));

/**
 * Relative imports: import and export statements with a `from` clause at the start of a line (type-only ones too,
 * over several lines), side-effect imports, and dynamic imports of a string literal.
 */
const RELATIVE_IMPORTS = [
  /^(?:import|export)\s[^;]*?\bfrom\s*["'](\.{1,2}\/[^"']+)["']/gm,
  /^import\s*["'](\.{1,2}\/[^"']+)["']/gm,
  /\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g,
];
/** A TypeScript entry point started in a child process by runTsChild with a string literal (relative to ml/src). */
const CHILD_SCRIPT = /\brunTsChild\(\s*["']([^"']+\.ts)["']/g;

const toPosix = (p: string) => p.split("\\").join("/");

/**
 * The ml/src modules one module depends on: its relative imports (type-only ones included: they are part of what the
 * module means) and the scripts it runs with `runTsChild`. Paths are relative to `root`, `.js` specifiers mapped to
 * the `.ts` source.
 */
export function dependenciesOf(file: string, root = SRC_DIR): string[] {
  const source = readFileSync(join(root, file), "utf8");
  const deps = new Set<string>();
  for (const pattern of RELATIVE_IMPORTS) {
    for (const match of source.matchAll(pattern)) {
      const specifier = (match[1] ?? "").replace(/\.js$/, ".ts");
      deps.add(toPosix(relative(root, resolve(root, dirname(file), specifier))));
    }
  }
  for (const match of source.matchAll(CHILD_SCRIPT)) deps.add(toPosix(match[1] ?? ""));
  return [...deps].sort();
}

/**
 * Every module reachable from the entry modules (the entries included), sorted: the source files a stage's output
 * depends on. Derived, so a stage's source list cannot go stale when a module gains an import.
 */
export function moduleGraph(entries: readonly string[], root = SRC_DIR): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const dep of dependenciesOf(file, root)) visit(dep);
  };
  for (const entry of entries) visit(toPosix(entry));
  return [...seen].sort();
}

/** Every .ts module under root (recursively), relative to it. */
export function allModules(root = SRC_DIR, under = ""): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(root, under), { withFileTypes: true })) {
    const path = under === "" ? entry.name : `${under}/${entry.name}`;
    if (entry.isDirectory()) out.push(...allModules(root, path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out.sort();
}

/** The first import cycle among the modules under root (as a path that ends where it starts), or undefined. */
export function findImportCycle(root = SRC_DIR): string[] | undefined {
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (file: string): string[] | undefined => {
    const s = state.get(file);
    if (s === "done") return undefined;
    if (s === "visiting") return [...stack.slice(stack.indexOf(file)), file];
    state.set(file, "visiting");
    stack.push(file);
    for (const dep of dependenciesOf(file, root)) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(file, "done");
    return undefined;
  };
  for (const file of allModules(root)) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return undefined;
}
