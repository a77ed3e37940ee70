// The alert rules and the dashboard, offline: `promtool check rules`, the promtool unit tests (every alert has a case
// where it fires and one where it stays quiet), the conventions every alert follows (for, severity, summary,
// description, a runbook section that exists), and the dashboard's shape (title, variables, datasource, topics).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "@shadowmesh/common";
import { checkMetrics, checkRules, testRules } from "@shadowmesh/common/testing";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { startPrometheus } from "./prometheus.js";
import {
  alertRules,
  dashboardPanels,
  dashboardQueries,
  loadDashboard,
  RULE_TESTS_DIR,
  RULES_FILE,
  RUNBOOK_FILE,
  withoutThresholds,
} from "./queries.js";

const testFiles = readdirSync(RULE_TESTS_DIR)
  .filter((f) => f.endsWith(".test.yaml"))
  .map((f) => path.join(RULE_TESTS_DIR, f));

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
const anchor = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, "")
    .replace(/ /g, "-");

describe("the alert rules file", () => {
  it("passes promtool check rules", async () => {
    const r = await checkRules(RULES_FILE, path.dirname(RULES_FILE));
    expect(r.output).toContain("SUCCESS");
    expect(r.code, r.output).toBe(0);
  });

  it("passes its promtool unit tests", async () => {
    expect(testFiles.length).toBeGreaterThan(0);
    const r = await testRules(testFiles, RULE_TESTS_DIR);
    expect(r.code, r.output).toBe(0);
  });

  it("fails promtool test rules when an alert's threshold is changed (the tests can fail)", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "shadowmesh-rules-"));
    try {
      const broken = readFileSync(RULES_FILE, "utf8").replace(
        'max by (namespace, candidate) (shadowmesh_verdict{decision="ROLLBACK"}) == 1',
        'max by (namespace, candidate) (shadowmesh_verdict{decision="ROLLBACK"}) == 2',
      );
      expect(broken).not.toBe(readFileSync(RULES_FILE, "utf8"));
      mkdirSync(path.join(dir, "rules"));
      mkdirSync(path.join(dir, "tests"));
      writeFileSync(path.join(dir, "rules/shadowmesh.rules.yaml"), broken);
      const tests = testFiles.map((f) => {
        const copy = path.join(dir, "tests", path.basename(f));
        const doc = parse(readFileSync(f, "utf8"));
        doc.rule_files = ["../rules/shadowmesh.rules.yaml"];
        writeFileSync(copy, JSON.stringify(doc));
        return copy;
      });
      const r = await testRules(tests, path.join(dir, "tests"));
      expect(r.code).not.toBe(0);
      expect(r.output).toContain("ShadowmeshVerdictRollback");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("has unit tests where every alert fires and where it stays quiet", () => {
    const fires = new Set<string>();
    const quiet = new Set<string>();
    for (const f of testFiles) {
      const doc = parse(readFileSync(f, "utf8")) as {
        tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
      };
      for (const t of doc.tests)
        for (const a of t.alert_rule_test ?? []) (a.exp_alerts?.length ? fires : quiet).add(a.alertname);
    }
    const names = alertRules().map((r) => r.alert);
    expect(names.filter((n) => !fires.has(n))).toEqual([]);
    expect(names.filter((n) => !quiet.has(n))).toEqual([]);
  });

  it("gives every alert a for:, a severity, a summary, a description and a runbook section that exists", () => {
    const runbook = readFileSync(RUNBOOK_FILE, "utf8");
    const anchors = new Set([...runbook.matchAll(/^#{2,4} (.+)$/gm)].map((m) => anchor(m[1] as string)));
    for (const rule of alertRules()) {
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(["critical", "warning"], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      const url = rule.annotations?.runbook_url ?? "";
      expect(url, rule.alert).toBe(
        `https://github.com/shadowmesh/shadowmesh/blob/main/observability/README.md#${rule.alert.toLowerCase()}`,
      );
      expect(anchors, `runbook section for ${rule.alert}`).toContain(rule.alert.toLowerCase());
    }
  });

  it("covers what the issue asks for", () => {
    expect(alertRules().map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        "ShadowmeshShadowErrorRatioAbovePrimary",
        "ShadowmeshShadowLatencyRegression",
        "ShadowmeshShadowAgreementLow",
        "ShadowmeshVerdictRollback",
        "ShadowmeshMirroredTrafficStalled",
        "ShadowmeshReportsDropped",
        "ShadowmeshMetricsServiceDown",
        "ShadowmeshShadowCoverageLow",
        "ShadowmeshShadowSilent",
        "ShadowmeshCandidatesRefused",
      ]),
    );
  });

  it("names the candidate in every alert about one candidate, and in no other", () => {
    const perCandidate = [
      "ShadowmeshShadowErrorRatioAbovePrimary",
      "ShadowmeshShadowLatencyRegression",
      "ShadowmeshShadowAgreementLow",
      "ShadowmeshVerdictRollback",
      "ShadowmeshShadowCoverageLow",
      "ShadowmeshShadowSilent",
    ];
    for (const rule of alertRules()) {
      const about = perCandidate.includes(rule.alert);
      expect(/by \(namespace, candidate\b/.test(rule.expr), rule.alert).toBe(about);
      expect(rule.annotations?.summary?.includes("{{ $labels.candidate }}"), rule.alert).toBe(about);
    }
  });

  it("writes thresholds as comparisons with numbers, so that taking them out is mechanical", () => {
    for (const rule of alertRules()) {
      const probe = withoutThresholds(rule.expr);
      expect(probe, rule.alert).toContain(" bool ");
      expect(probe).not.toMatch(/\bunless\b/);
    }
    expect(() => withoutThresholds("a > b")).toThrow(/not with a number/);
    expect(withoutThresholds('x{a=~"b|c"} >= 0.5 unless y == 1')).toBe(
      'x{a=~"b|c"} >= bool 0.5 or y == bool 1',
    );
  });
});

describe("the Grafana dashboard", () => {
  const dashboard = loadDashboard();
  const panels = dashboardPanels(dashboard);
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join("\n");

  it('is "Shadowmesh: primary vs shadow" with datasource, namespace, candidate and window variables', () => {
    expect(dashboard.title).toBe("Shadowmesh: primary vs shadow");
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    expect(dashboard.templating.list.map((v) => `${v.name}:${v.type}`)).toEqual([
      "datasource:datasource",
      "namespace:query",
      "candidate:query",
      "window:custom",
    ]);
  });

  it("queries through the datasource variable and filters every query by namespace", () => {
    for (const p of panels) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template string
      expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: "${datasource}" });
      for (const t of p.targets ?? []) {
        const selectors = [...t.expr.matchAll(/[a-z_:]+\{([^}]*)\}/g)];
        expect(selectors.length, `${p.title} ${t.refId}`).toBeGreaterThan(0);
        for (const s of selectors) expect(s[1], `${p.title} ${t.refId}`).toContain('namespace="$namespace"');
      }
    }
  });

  it("filters every comparison gauge by the candidate variable, which lists metrics-service's candidates", () => {
    const variable = dashboard.templating.list.find((v) => v.name === "candidate");
    expect(JSON.stringify(variable?.query)).toContain(
      'label_values(shadowmesh_verdict{namespace=\\"$namespace\\"}, candidate)',
    );
    const unfiltered: string[] = [];
    let filtered = 0;
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        for (const m of t.expr.matchAll(/(shadowmesh_(?:shadow_[a-z_]+|verdict))\{([^}]*)\}/g)) {
          // The window and the report's own duration are metrics-service's, not a candidate's.
          if (/_window_seconds$|_report_duration_seconds$/.test(m[1] as string)) continue;
          if (/candidate=~?"\$candidate/.test(m[2] as string)) filtered++;
          else unfiltered.push(`${p.title} ${t.refId}: ${m[0]}`);
        }
      }
    }
    expect(unfiltered).toEqual([]);
    expect(filtered).toBeGreaterThan(20);
  });

  it("has unique panel ids and titles, and every query substitutes cleanly", () => {
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    expect(new Set(panels.map((p) => p.title)).size).toBe(panels.length);
    expect(() =>
      dashboardQueries(dashboard, { namespace: "n", candidate: "c", window: "5m", datasource: "d" }),
    ).not.toThrow();
    expect(() => dashboardQueries(dashboard, { namespace: "n" })).toThrow(/unknown dashboard variable/);
  });

  it("shows what the issue lists, per role and model version where the metric has them", () => {
    for (const metric of [
      "grpc_server_handled_total",
      "grpc_server_handling_seconds_bucket",
      "shadowmesh_shadow_agreement_ratio",
      "shadowmesh_shadow_agreement_lower_bound_ratio",
      "shadowmesh_shadow_agreement_upper_bound_ratio",
      "shadowmesh_shadow_label_flips",
      "shadowmesh_shadow_score_delta_ratio",
      "shadowmesh_verdict",
      "shadowmesh_shadow_mirror_ratio",
      "shadowmesh_shadow_coverage_ratio",
      "shadowmesh_shadow_silence_seconds",
      "model_service_report_dropped_total",
      "shadowmesh_records_ingested_total",
      "app_requests_total",
      "app_requests_in_progress",
      "app_request_latency_seconds",
    ])
      expect(exprs, metric).toContain(metric);
    for (const q of ["0.5", "0.95", "0.99"])
      expect(exprs).toContain(`histogram_quantile(${q}, sum by (le, role, version)`);
    expect(exprs).toMatch(/sum by \(role, version, grpc_code\)/);
  });
});

describe("the promtool helper", () => {
  it("passes a clean exposition text and reports what promtool finds in a bad one", async () => {
    const clean = await checkMetrics("# HELP x_total Things.\n# TYPE x_total counter\nx_total 1\n");
    expect(clean).toEqual({ code: 0, output: "" });
    // A counter without the _total suffix: promtool's lint says so (exit 3 on lint problems).
    const lint = await checkMetrics("# HELP x Things.\n# TYPE x counter\nx 1\n");
    expect(lint.code).not.toBe(0);
    expect(lint.output).toContain('counter metrics should have "_total" suffix');
    const garbage = await checkMetrics("x{ 1\n");
    expect(garbage.code).not.toBe(0);
    expect(garbage.output).not.toBe("");
  });

  it("fails check rules on a rules file with a bad expression", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "shadowmesh-promtool-"));
    try {
      const file = path.join(dir, "bad.rules.yaml");
      writeFileSync(
        file,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum by (x (y)\n",
      );
      const r = await checkRules(file, dir);
      expect(r.code).not.toBe(0);
      expect(r.output).toContain("bad.rules.yaml");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the Prometheus helper", () => {
  it("fails at once, with Prometheus' own words, when Prometheus cannot start", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "shadowmesh-prom-bad-"));
    try {
      const rules = path.join(dir, "bad.rules.yaml");
      writeFileSync(
        rules,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum by (x (y)\n",
      );
      const error = await startPrometheus({ port: await freePort(), jobs: [], ruleFiles: [rules] }).catch(
        (e: Error) => e,
      );
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(/prometheus exited \(\d+\)/);
      expect((error as Error).message).toContain("bad.rules.yaml");
      // The exit path, not the 20 s readiness timeout ("not ready within").
      expect((error as Error).message).not.toContain("not ready within");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
