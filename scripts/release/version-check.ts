// The release gate: a tag `vX.Y.Z` must equal the version of the root package.json, of every workspace's
// package.json, and the chart's `version` and `appVersion` (the images are tagged with appVersion, the chart is
// pushed with version). `.github/workflows/release.yml` runs it before anything is built.
//
//   npx tsx scripts/release/version-check.ts v1.2.3     (or GITHUB_REF_NAME=v1.2.3)
//   exit 0: every version matches; 1: a mismatch (one line per problem); 2: no or malformed tag
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const CHART_FILE = "charts/shadowmesh/Chart.yaml";

/** Semantic version without a pre-release or build suffix: what `vX.Y.Z` tags carry. */
const TAG = /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

export interface VersionCheck {
  /** The version the tag names (without `v`), or null when the tag is malformed. */
  version: string | null;
  /** Every place whose version differs, as `file: field is X, tag says Y`. */
  problems: string[];
  /** Every place that was compared. */
  checked: string[];
}

function readJson(file: string): { name?: string; version?: unknown; workspaces?: unknown } {
  return JSON.parse(readFileSync(file, "utf8"));
}

export function checkVersions(tag: string, root = REPO_ROOT): VersionCheck {
  const match = TAG.exec(tag);
  if (!match) {
    return { version: null, problems: [`tag "${tag}" is not vX.Y.Z (e.g. v1.2.3)`], checked: [] };
  }
  const version = tag.slice(1);
  const problems: string[] = [];
  const checked: string[] = [];
  const compare = (where: string, field: string, value: unknown) => {
    checked.push(`${where} ${field}`);
    if (value === undefined || value === null || value === "") problems.push(`${where}: ${field} is missing`);
    else if (String(value) !== version)
      problems.push(`${where}: ${field} is ${String(value)}, tag says ${version}`);
  };

  const rootPackage = readJson(path.join(root, "package.json"));
  compare("package.json", "version", rootPackage.version);
  const workspaces = Array.isArray(rootPackage.workspaces) ? (rootPackage.workspaces as string[]) : [];
  if (workspaces.length === 0) problems.push("package.json: no workspaces listed");
  for (const workspace of workspaces) {
    const file = path.join(workspace, "package.json");
    if (!existsSync(path.join(root, file))) {
      problems.push(`${file}: missing (listed in the root package.json's workspaces)`);
      continue;
    }
    compare(file, "version", readJson(path.join(root, file)).version);
  }

  const chartPath = path.join(root, CHART_FILE);
  if (!existsSync(chartPath)) problems.push(`${CHART_FILE}: missing`);
  else {
    const chart = parse(readFileSync(chartPath, "utf8")) as { version?: unknown; appVersion?: unknown };
    compare(CHART_FILE, "version", chart.version);
    compare(CHART_FILE, "appVersion", chart.appVersion);
  }
  return { version, problems, checked };
}

function main(argv: string[]): number {
  const tag = argv[0] ?? process.env.GITHUB_REF_NAME ?? "";
  if (!tag) {
    console.error("usage: version-check.ts vX.Y.Z (or set GITHUB_REF_NAME)");
    return 2;
  }
  const result = checkVersions(tag);
  if (result.version === null) {
    console.error(result.problems.join("\n"));
    return 2;
  }
  if (result.problems.length > 0) {
    console.error(
      `release ${tag}: ${result.problems.length} version(s) do not match:\n${result.problems.join("\n")}`,
    );
    return 1;
  }
  console.log(`release ${tag}: ${result.checked.length} versions match (${result.checked.join(", ")})`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
