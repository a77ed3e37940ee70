// The release gate: the tag must equal every version in the repository. A match passes; each kind of mismatch
// (root, one workspace, chart version, chart appVersion, a missing version, a malformed tag) fails and names the
// file; the CLI's exit codes say which.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CHART_FILE, checkVersions, REPO_ROOT } from "./version-check.js";

const rootVersion = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")).version as string;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A copy of the files the check reads (root + workspace package.json files, Chart.yaml). */
function copyOfRepo(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "shadowmesh-release-"));
  dirs.push(dir);
  const root = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
    workspaces: string[];
  };
  for (const file of ["package.json", CHART_FILE, ...root.workspaces.map((w) => `${w}/package.json`)]) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    cpSync(path.join(REPO_ROOT, file), path.join(dir, file));
  }
  return dir;
}
function edit(dir: string, file: string, change: (text: string) => string) {
  const p = path.join(dir, file);
  const before = readFileSync(p, "utf8");
  const after = change(before);
  expect(after).not.toBe(before);
  writeFileSync(p, after);
}
const cli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(
    process.execPath,
    ["--import", "tsx", path.join(REPO_ROOT, "scripts/release/version-check.ts"), ...args],
    {
      cwd: REPO_ROOT,
      encoding: "utf8",
      env: { ...process.env, GITHUB_REF_NAME: "", ...env },
    },
  );

describe("the release version check", () => {
  it("passes on this repository with its own version, checking root, every workspace and the chart", () => {
    const r = checkVersions(`v${rootVersion}`);
    expect(r.problems).toEqual([]);
    expect(r.checked).toEqual(
      expect.arrayContaining([
        "package.json version",
        "services/app-service/package.json version",
        "web/package.json version",
        `${CHART_FILE} version`,
        `${CHART_FILE} appVersion`,
      ]),
    );
    expect(r.checked.length).toBe(1 + 7 + 2);
  });

  it("fails when the tag is another version, naming every file", () => {
    const r = checkVersions("v99.0.0");
    expect(r.problems).toHaveLength(r.checked.length);
    expect(r.problems[0]).toBe(`package.json: version is ${rootVersion}, tag says 99.0.0`);
  });

  it("fails when only the root package.json differs", () => {
    const dir = copyOfRepo();
    edit(dir, "package.json", (t) => t.replace(`"version": "${rootVersion}"`, '"version": "9.9.9"'));
    expect(checkVersions(`v${rootVersion}`, dir).problems).toEqual([
      `package.json: version is 9.9.9, tag says ${rootVersion}`,
    ]);
  });

  it("fails when one workspace differs", () => {
    const dir = copyOfRepo();
    edit(dir, "services/metrics-service/package.json", (t) =>
      t.replace(`"version": "${rootVersion}"`, '"version": "0.0.9"'),
    );
    expect(checkVersions(`v${rootVersion}`, dir).problems).toEqual([
      `services/metrics-service/package.json: version is 0.0.9, tag says ${rootVersion}`,
    ]);
  });

  it("fails when a workspace has no version, or is missing", () => {
    const dir = copyOfRepo();
    edit(dir, "gen/package.json", (t) => t.replace(/\s*"version": "[^"]*",/, ""));
    rmSync(path.join(dir, "ml/package.json"));
    expect(checkVersions(`v${rootVersion}`, dir).problems).toEqual([
      "gen/package.json: version is missing",
      "ml/package.json: missing (listed in the root package.json's workspaces)",
    ]);
  });

  it("fails when the chart's version differs", () => {
    const dir = copyOfRepo();
    edit(dir, CHART_FILE, (t) => t.replace(/^version: .*$/m, "version: 0.2.0"));
    expect(checkVersions(`v${rootVersion}`, dir).problems).toEqual([
      `${CHART_FILE}: version is 0.2.0, tag says ${rootVersion}`,
    ]);
  });

  it("fails when the chart's appVersion differs", () => {
    const dir = copyOfRepo();
    edit(dir, CHART_FILE, (t) => t.replace(/^appVersion: .*$/m, 'appVersion: "0.1.1"'));
    expect(checkVersions(`v${rootVersion}`, dir).problems).toEqual([
      `${CHART_FILE}: appVersion is 0.1.1, tag says ${rootVersion}`,
    ]);
  });

  it("refuses tags that are not vX.Y.Z", () => {
    for (const tag of [rootVersion, `v${rootVersion}-rc.1`, "v1.2", "v01.2.3", "release-1", ""]) {
      expect(checkVersions(tag).version, tag).toBeNull();
    }
  });

  it("exits 0 on a match, 1 on a mismatch, 2 without a proper tag; reads GITHUB_REF_NAME", () => {
    const ok = cli([`v${rootVersion}`]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("versions match");
    const bad = cli(["v99.0.0"]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`package.json: version is ${rootVersion}, tag says 99.0.0`);
    expect(cli(["1.0.0"]).status).toBe(2);
    expect(cli([]).status).toBe(2);
    expect(cli([], { GITHUB_REF_NAME: `v${rootVersion}` }).status).toBe(0);
  });
});
