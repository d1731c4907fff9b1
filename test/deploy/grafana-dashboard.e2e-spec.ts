/**
 * The Grafana dashboard (deploy/grafana/zim-room-gateway.json) as a Grafana JSON model: a
 * datasource variable every query goes through, panels that fit the grid, one query per refId,
 * the topics the operations team asked for, and only metric names the gateway registers (in its
 * source; test/fleet/prometheus.fleet-spec.ts checks them against a real scrape too). The alert
 * rules are held to the same: no rule on a metric the gateway does not export.
 */
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../support/gateway-process.js';
import {
  alertRulesOf,
  dashboardPanels,
  GRAFANA_BUILTIN_VARIABLES,
  loadAlertRules,
  loadDashboard,
  variablesIn,
  type Dashboard,
} from '../support/monitoring-files.js';
import { metricNamesIn } from '../support/promql-metric-names.js';

const dashboard: Dashboard = loadDashboard();
const queryPanels = dashboardPanels(dashboard).filter((panel) => panel.type !== 'row');
const expressions = queryPanels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));

/**
 * Every metric name the gateway's source registers with prom-client (`name: 'zim_gateway_…'`),
 * a histogram's as its _bucket, _count and _sum series.
 */
function metricNamesTheGatewayRegisters(): Set<string> {
  const names = new Set<string>();
  const src = path.join(REPO_ROOT, 'src');
  for (const file of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts') || /\.(spec|redis-spec)\.ts$/.test(file)) continue;
    const source = readFileSync(path.join(src, file), 'utf8');
    for (const match of source.matchAll(/new (Counter|Gauge|Histogram)\(\{\s*name: '(zim_gateway_\w+)'/g)) {
      const [, kind, name] = match as unknown as [string, string, string];
      if (kind === 'Histogram') for (const suffix of ['_bucket', '_count', '_sum']) names.add(name + suffix);
      else names.add(name);
    }
  }
  return names;
}

describe('the Grafana dashboard', () => {
  it('is a Grafana dashboard model with a uid, a title and a schema version', () => {
    expect(dashboard).toMatchObject({ uid: 'zim-room-gateway', title: expect.any(String), schemaVersion: expect.any(Number) });
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(queryPanels.length).toBeGreaterThan(10);
  });

  it('has a Prometheus datasource variable, and every panel and query reads through it', () => {
    const variables = dashboard.templating.list;
    expect(variables).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
    for (const panel of queryPanels) {
      expect({ panel: panel.title, datasource: panel.datasource }).toEqual({
        panel: panel.title,
        datasource: { type: 'prometheus', uid: '${datasource}' },
      });
      for (const target of panel.targets ?? []) expect(target.datasource ?? panel.datasource).toEqual(panel.datasource);
    }
  });

  it('uses in its queries only the variables it declares, and Grafana\'s own', () => {
    const declared = new Set([...dashboard.templating.list.map((variable) => variable.name), ...GRAFANA_BUILTIN_VARIABLES]);
    const undeclared = expressions.flatMap(variablesIn).filter((name) => !declared.has(name));
    expect(undeclared).toEqual([]);
  });

  it('gives each panel a unique id, a place on the 24-column grid, and each query a unique refId', () => {
    const ids = dashboardPanels(dashboard).map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboardPanels(dashboard)) {
      const { x, y, w, h } = panel.gridPos;
      expect({ panel: panel.title, fits: [x, y, w, h].every(Number.isInteger) && x >= 0 && w > 0 && h > 0 && x + w <= 24 }).toEqual({
        panel: panel.title,
        fits: true,
      });
    }
    for (const panel of queryPanels) {
      const targets = panel.targets ?? [];
      expect({ panel: panel.title, queries: targets.length > 0 }).toEqual({ panel: panel.title, queries: true });
      expect(new Set(targets.map((target) => target.refId)).size).toBe(targets.length);
      for (const target of targets) expect(target.expr.trim()).not.toBe('');
    }
  });

  it('shows the budget against its limit, waits per priority, clients, vendor codes, mode and fleet, batches, latency and errors', () => {
    const read = new Set(expressions.flatMap(metricNamesIn));
    const topics: Record<string, string[]> = {
      'budget used against the limit': ['zim_gateway_outbound_slots_granted_total', 'zim_gateway_outbound_budget_calls_per_second'],
      'waits per priority': ['zim_gateway_outbound_limiter_wait_seconds_bucket'],
      'per-client shares and refusals': ['zim_gateway_outbound_fair_share', 'zim_gateway_client_quota_refusals_total', 'zim_gateway_outbound_limiter_wait_seconds_count'],
      'vendor codes': ['zim_gateway_vendor_calls_total'],
      'mode and fleet size': ['zim_gateway_outbound_limiter_mode', 'zim_gateway_fleet_members', 'zim_gateway_ready'],
      'batch queue depth and drain rate': ['zim_gateway_batch_rooms_waiting', 'zim_gateway_batch_rooms_total', 'zim_gateway_batch_rooms_accepted_total'],
      'latency and errors': ['zim_gateway_http_request_duration_seconds_bucket', 'zim_gateway_http_requests_total'],
    };
    const missing = Object.entries(topics).flatMap(([topic, names]) => names.filter((name) => !read.has(name)).map((name) => `${topic}: ${name}`));
    expect(missing).toEqual([]);
    expect(expressions.some((expr) => /by \([^)]*priority[^)]*\)/.test(expr) && expr.includes('limiter_wait_seconds_bucket'))).toBe(true);
    expect(expressions.some((expr) => /by \([^)]*code[^)]*\)/.test(expr) && expr.includes('vendor_calls_total'))).toBe(true);
  });
});

describe('the metric names of the dashboard and the alert rules', () => {
  const registered = metricNamesTheGatewayRegisters();

  it('finds the gateway\'s metrics in its source (the check below can fail)', () => {
    expect(registered).toContain('zim_gateway_http_requests_total');
    expect(registered).toContain('zim_gateway_http_request_duration_seconds_bucket');
    expect(registered).not.toContain('zim_gateway_http_request_duration_seconds');
    expect(registered.size).toBeGreaterThan(30);
  });

  it('are every one a metric the gateway registers', () => {
    const used = [
      ...expressions.map((expr) => ({ where: 'dashboard', expr })),
      ...alertRulesOf(loadAlertRules()).map((rule) => ({ where: rule.alert, expr: rule.expr })),
    ];
    const unknown = used.flatMap(({ where, expr }) => metricNamesIn(expr).filter((name) => !registered.has(name)).map((name) => `${where}: ${name}`));
    expect(unknown).toEqual([]);
  });
});
