// Everything Shadowmesh asks of Prometheus, as text: the dashboard's panel queries (variables substituted), the alert
// expressions of the rules file (as written, and with their thresholds taken out), and the PromQL of the rollout
// templates the chart renders. scripts/prometheus/real-prometheus.test.ts evaluates all of them against a real
// Prometheus scraping a real local mesh.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const DASHBOARD_FILE = path.join(REPO_ROOT, "charts/shadowmesh/files/grafana/shadowmesh.json");
export const RULES_FILE = path.join(REPO_ROOT, "charts/shadowmesh/files/prometheus/shadowmesh.rules.yaml");
export const RULE_TESTS_DIR = path.join(REPO_ROOT, "observability/tests");
export const RUNBOOK_FILE = path.join(REPO_ROOT, "observability/README.md");

export interface NamedQuery {
  /** Where the query comes from, e.g. `panel "Request rate" A` or `alert ShadowmeshVerdictRollback`. */
  name: string;
  expr: string;
}

export interface DashboardTarget {
  expr: string;
  refId: string;
  legendFormat?: string;
}
export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type: string; uid: string };
  targets?: DashboardTarget[];
  panels?: DashboardPanel[];
}
export interface Dashboard {
  title: string;
  uid: string;
  templating: { list: { name: string; type: string; query: unknown }[] };
  panels: DashboardPanel[];
}

export function loadDashboard(file = DASHBOARD_FILE): Dashboard {
  return JSON.parse(readFileSync(file, "utf8")) as Dashboard;
}

/** Every panel that is not a row (rows' own nested panels included). */
export function dashboardPanels(dashboard: Dashboard): DashboardPanel[] {
  const out: DashboardPanel[] = [];
  for (const panel of dashboard.panels) {
    if (panel.type === "row") out.push(...(panel.panels ?? []));
    else out.push(panel);
  }
  return out;
}

/** Grafana's variable syntaxes `$name`, `${name}` and `[[name]]`, replaced by `values[name]`; unknown names throw. */
export function substituteVariables(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (match, a, b, c) => {
    const name = (a ?? b ?? c) as string;
    if (name.startsWith("__")) throw new Error(`${match}: Grafana's built-in variables are not used here`);
    const value = values[name];
    if (value === undefined) throw new Error(`unknown dashboard variable ${match}`);
    return value;
  });
}

export function dashboardQueries(dashboard: Dashboard, values: Record<string, string>): NamedQuery[] {
  return dashboardPanels(dashboard).flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({
      name: `panel "${panel.title}" ${target.refId}`,
      expr: substituteVariables(target.expr, values),
    })),
  );
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RecordingRule {
  record: string;
  expr: string;
}
export interface RuleGroup {
  name: string;
  rules: (AlertRule | RecordingRule)[];
}

export function loadRuleGroups(file = RULES_FILE): RuleGroup[] {
  return (parse(readFileSync(file, "utf8")) as { groups: RuleGroup[] }).groups;
}

export function alertRules(groups = loadRuleGroups()): AlertRule[] {
  return groups.flatMap((g) => g.rules.filter((r): r is AlertRule => "alert" in r));
}

/**
 * An alert expression "without its threshold": every comparison with a number (`> 0.01`, `== 1`, `>= 100`) becomes
 * a `bool` comparison, which keeps every series it compares (value 0 or 1) instead of only those past the threshold,
 * and `unless` becomes `or` (both sides' series). What is left are the joins (`and on (…)`, `or`), so a series the
 * alert would look at is returned exactly when every metric and label the expression needs exists. Comparisons
 * between two vectors are not allowed in the rules (write `(a - b) > 0`), so after this no filter is left; the
 * function throws if one is.
 */
export function withoutThresholds(expr: string): string {
  const out = expr
    .replace(/(==|!=|>=|<=|>|<)(\s*)(?!bool\b)(?=[-+]?(\d|\.\d|Inf\b|NaN\b))/g, "$1 bool$2")
    .replace(/\bunless\b/g, "or");
  const filters = stripStringsAndMatchers(out).match(/(==|!=|>=|<=|>(?!=)|<(?!=))(?!\s*bool\b)/g);
  if (filters) throw new Error(`a comparison that is not with a number is left in: ${expr}`);
  return out;
}

/** The expression with string literals and `{…}` label matchers blanked out (their `=~`, `!=` are not operators). */
export function stripStringsAndMatchers(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^{}]*\}/g, "{}");
}

/** The metric names a PromQL expression reads: identifiers that are not functions, keywords or label names. */
export function metricNames(expr: string): string[] {
  const keywords = new Set(["bool", "and", "or", "unless", "offset", "Inf", "NaN", "inf", "nan"]);
  const stripped = stripStringsAndMatchers(expr)
    // Grouping/matching label lists `by (a, b)` are not metrics.
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\b/g, " ")
    // Durations in ranges, `[5m]` or `[1h:1m]`.
    .replace(/\[[^\]]*\]/g, "[]");
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(?!\s*\()(?![\w:])/g)) {
    const name = m[1] as string;
    if (!keywords.has(name)) names.add(name);
  }
  return [...names];
}

/** Renames metric `name` everywhere in `expr` (whole identifiers only). */
export function renameMetric(expr: string, name: string, to: string): string {
  return expr.replace(
    new RegExp(`(?<![\\w:])${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![\\w:])`, "g"),
    to,
  );
}

/** Splits an expression at its top-level `or` operators (outside any parentheses). */
export function topLevelOrOperands(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  const blanked = expr.replace(/"(?:[^"\\]|\\.)*"/g, (m) => " ".repeat(m.length));
  for (let i = 0; i < blanked.length; i++) {
    const c = blanked[i];
    if (c === "(" || c === "{" || c === "[") depth++;
    else if (c === ")" || c === "}" || c === "]") depth--;
    else if (
      depth === 0 &&
      blanked.startsWith("or", i) &&
      !/[\w:]/.test(blanked[i - 1] ?? " ") &&
      !/[\w:]/.test(blanked[i + 2] ?? " ")
    ) {
      parts.push(expr.slice(start, i).trim());
      // `or on (…)` / `or ignoring (…)`: the modifier belongs to the operator.
      const rest = expr.slice(i + 2);
      const modifier = /^\s*(on|ignoring)\s*\([^()]*\)/.exec(rest);
      start = i + 2 + (modifier ? modifier[0].length : 0);
      i = start - 1;
    }
  }
  parts.push(expr.slice(start).trim());
  return parts;
}

/**
 * What the real-Prometheus test evaluates for an alert: each top-level `or` operand of the expression without its
 * thresholds, on its own (so that one branch cannot hide another whose metric is missing).
 */
export function alertProbes(rule: AlertRule): NamedQuery[] {
  const operands = topLevelOrOperands(withoutThresholds(rule.expr));
  return operands.map((expr, i) => ({
    name:
      operands.length > 1
        ? `alert ${rule.alert} (operand ${i + 1} of ${operands.length})`
        : `alert ${rule.alert}`,
    expr,
  }));
}
