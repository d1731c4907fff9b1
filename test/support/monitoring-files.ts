/**
 * The operations files under deploy/ as the tests read them: the alert rules (the plain rules file
 * and the PrometheusRule that carries the same groups), their promtool tests, and the Grafana
 * dashboard with its queries, template variables put in.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from './gateway-process.js';

export const ALERT_RULES_FILE = path.join(REPO_ROOT, 'deploy/prometheus/zim-room-gateway.rules.yaml');
export const ALERT_RULE_TESTS_FILE = path.join(REPO_ROOT, 'deploy/prometheus/tests/zim-room-gateway.rules.test.yaml');
export const OPERATOR_COMPONENT_DIR = path.join(REPO_ROOT, 'deploy/kubernetes/components/prometheus-operator');
export const DASHBOARD_FILE = path.join(REPO_ROOT, 'deploy/grafana/zim-room-gateway.json');

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface RuleGroups {
  groups: Array<{ name: string; interval?: string; rules: AlertRule[] }>;
}

export function readYaml(file: string): any {
  return parse(readFileSync(file, 'utf8'));
}

export function loadAlertRules(): RuleGroups {
  return readYaml(ALERT_RULES_FILE) as RuleGroups;
}

export function alertRulesOf(rules: RuleGroups): AlertRule[] {
  return rules.groups.flatMap((group) => group.rules);
}

/** A copy whose every `for` is `duration`: the same alerts, reached within a test's patience. */
export function withForShortenedTo(rules: RuleGroups, duration: string): RuleGroups {
  const copy = structuredClone(rules);
  for (const rule of alertRulesOf(copy)) if (rule.for !== undefined) rule.for = duration;
  return copy;
}

export interface DashboardTarget {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: { type: string; uid: string };
}

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: DashboardTarget[];
  panels?: DashboardPanel[];
}

export interface DashboardVariable {
  name: string;
  type: string;
  query: unknown;
  allValue?: string;
  includeAll?: boolean;
}

export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: DashboardPanel[];
  templating: { list: DashboardVariable[] };
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
}

/** Every panel, those inside collapsed rows included. */
export function dashboardPanels(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

/** Grafana's own variables the dashboard's queries may use besides its template variables. */
export const GRAFANA_BUILTIN_VARIABLES = ['__rate_interval', '__interval', '__range'];

/** The `$name` and `${name}` variables an expression uses. */
export function variablesIn(expr: string): string[] {
  return [...expr.matchAll(/\$\{(\w+)\}|\$(\w+)/g)].map((match) => (match[1] ?? match[2])!);
}

/** Every query of the dashboard, named by its panel and refId, with `values` put in for its variables. */
export function dashboardQueries(dashboard: Dashboard, values: Readonly<Record<string, string>>): Array<{ name: string; expr: string }> {
  return dashboardPanels(dashboard).flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({
      name: `dashboard panel "${panel.title}" ${target.refId}`,
      expr: target.expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (_text, braced?: string, bare?: string) => {
        const name = (braced ?? bare)!;
        if (!(name in values)) throw new Error(`no value given for $${name} (${panel.title})`);
        return values[name]!;
      }),
    })),
  );
}
