/**
 * The alert rules and the Grafana dashboard against real parts: a real Prometheus (Debian's
 * `prometheus`) scraping two real gateway replicas every second, with the test's copy of the rules
 * loaded (every `for` shortened to a few seconds). It checks that every expression of the rules
 * and the dashboard parses, that every metric they read has series once a little traffic has
 * passed (a burst the budget refuses part of, a client over its quota, a batch), and that the
 * fallback alert fires once Redis has been stopped for longer than its `for`.
 *
 * It runs with the fleet specs for its cost (two replicas, Redis, the fake and Prometheus), not for
 * any timing at the vendor's door.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import { waitFor } from '../support/async-probes.js';
import { batchClient, roomsNamed } from '../support/batch-client.js';
import { createRoom } from '../support/fleet.js';
import { FLEET_CLIENTS, fleetScenario } from '../support/fleet-scenario.js';
import { alertRulesOf, dashboardQueries, loadAlertRules, loadDashboard, withForShortenedTo } from '../support/monitoring-files.js';
import { startPrometheus, stopAllPrometheus, type PrometheusAlert, type PrometheusServer } from '../support/prometheus-server.js';
import { metricNamesIn } from '../support/promql-metric-names.js';

/** The label service discovery gives each target, as the ServiceMonitor's does; the dashboard's $namespace. */
const NAMESPACE = 'zim-fleet-test';
/** Every `for` of the test's copy of the rules (a minute and more in the real ones). */
const SHORTENED_FOR = '3s';
const SHORTENED_FOR_MS = 3_000;
const FALLBACK_ALERT = 'ZimGatewayOnFallbackShare';
const NO_REPLICA_READY_ALERT = 'ZimGatewayNoReplicaReady';

// ops may make 1 request a second: its second one at once is refused by its quota.
const fleet = fleetScenario({ replicas: 2, env: { CLIENT_RATE_LIMITS: 'ops:1' } });
let prometheus: PrometheusServer;
let targets: string[];
let startedAt: number;

beforeAll(async () => {
  startedAt = Date.now();
  targets = fleet.gateways.map((gateway) => `127.0.0.1:${gateway.port}`);
  prometheus = await startPrometheus({
    targets,
    targetLabels: { namespace: NAMESPACE },
    rules: withForShortenedTo(loadAlertRules(), SHORTENED_FOR),
    intervalSeconds: 1,
  });
}, 60_000);

afterAll(() => stopAllPrometheus());

/** Every expression of the alert rules and of the dashboard (its variables as Grafana would put them in). */
function everyExpression(): Array<{ name: string; expr: string }> {
  return [
    ...alertRulesOf(loadAlertRules()).map((rule) => ({ name: `alert ${rule.alert}`, expr: rule.expr })),
    ...dashboardQueries(loadDashboard(), { namespace: NAMESPACE, __rate_interval: '1m' }),
  ];
}

/** The metric names among `names` of which Prometheus holds no series from this fleet. */
async function withoutSeries(names: readonly string[]): Promise<string[]> {
  const found = await Promise.all(names.map(async (name) => (await prometheus.series(`{__name__="${name}",namespace="${NAMESPACE}"}`, startedAt)).length > 0));
  return names.filter((_, index) => !found[index]);
}

async function fallbackAlerts(alertname: string): Promise<PrometheusAlert[]> {
  return (await prometheus.alerts()).filter((alert) => alert.labels.alertname === alertname);
}

async function readyReplicas(): Promise<string[]> {
  const answer = await prometheus.query(`sum(zim_gateway_ready{namespace="${NAMESPACE}"})`);
  return (answer.data?.result ?? []).map((sample) => sample.value[1]);
}

/**
 * A little of everything the rules and the dashboard read: more callers at once than the budget
 * serves within RATE_LIMIT_MAX_WAIT_MS (some wait, at both priorities, with fair shares; some are
 * refused), a client over its own quota, and a batch to its end.
 */
async function driveTraffic(): Promise<void> {
  const burst = await Promise.all(
    Array.from({ length: 100 }, (_, index) => {
      const gateway = fleet.gateways[index % fleet.gateways.length]!;
      return index % 5 === 0
        ? createRoom(gateway.url, FLEET_CLIENTS.reports, `prom-burst-${index}`, 15_000, { 'X-Priority': 'batch' })
        : createRoom(gateway.url, FLEET_CLIENTS.web, `prom-burst-${index}`, 15_000);
    }),
  );
  expect(burst.some((answer) => answer.status === 201)).toBe(true);
  expect(burst.some((answer) => answer.status === 429)).toBe(true);

  const opsGateway = fleet.gateways[0]!;
  const quota = [
    await createRoom(opsGateway.url, FLEET_CLIENTS.ops, 'prom-quota-0', 15_000),
    await createRoom(opsGateway.url, FLEET_CLIENTS.ops, 'prom-quota-1', 15_000),
  ];
  expect(quota.map((answer) => answer.status)).toContain(429);

  const batches = batchClient(fleet.gateways[1]!, FLEET_CLIENTS.bulk);
  const submitted = await batches.submit({ rooms: roomsNamed('prom-batch', 3) });
  expect(submitted.status).toBe(202);
  await batches.untilEnded(String(submitted.body.batchId));
}

describe('a real Prometheus scraping two replicas, with the rules and the dashboard', () => {
  it('parses every expression of the dashboard and of the alert rules', async () => {
    const expressions = everyExpression();
    const answers = await Promise.all(expressions.map(async ({ name, expr }) => ({ name, answer: await prometheus.query(expr) })));
    const refused = answers.filter(({ answer }) => answer.status !== 'success').map(({ name, answer }) => `${name}: ${answer.errorType}: ${answer.error}`);
    expect(refused).toEqual([]);
    expect(answers.length).toBeGreaterThan(30);
    // The check can fail: Prometheus refuses what does not parse.
    expect(await prometheus.query('sum(rate(zim_gateway_http_requests_total[5m])')).toMatchObject({ status: 'error', errorType: 'bad_data' });
  });

  it('finds series of every metric they read, once the replicas have seen traffic', async () => {
    await driveTraffic();
    const names = [...new Set(everyExpression().flatMap(({ expr }) => metricNamesIn(expr)))].sort();
    expect(names.length).toBeGreaterThan(15);
    let missing = [...names];
    // Scrapes come every second; a gauge such as the fair share exists only while callers wait.
    await waitFor(
      async () => {
        missing = await withoutSeries(missing);
        return missing.length === 0;
      },
      { what: 'series of every metric', timeoutMs: 20_000, intervalMs: 500 },
    ).catch(() => undefined);
    expect(missing).toEqual([]);
    // The check can fail: a name the gateway does not export has none.
    expect(await withoutSeries(['zim_gateway_no_such_metric_total'])).toEqual(['zim_gateway_no_such_metric_total']);
  });

  it('counts both replicas ready, and no replica off the shared budget, while Redis is up', async () => {
    expect(await readyReplicas()).toEqual([String(fleet.gateways.length)]);
    expect(await fallbackAlerts(FALLBACK_ALERT)).toEqual([]);
  });

  it('fires the fallback alert for each replica once Redis has been stopped for longer than its `for`', async () => {
    await fleet.redis.stop();
    const stoppedAt = performance.now();
    const states = new Set<string>();
    let firing: PrometheusAlert[] = [];
    await waitFor(
      async () => {
        const alerts = await fallbackAlerts(FALLBACK_ALERT);
        for (const alert of alerts) states.add(alert.state);
        firing = alerts.filter((alert) => alert.state === 'firing');
        return firing.length === targets.length;
      },
      { what: `${FALLBACK_ALERT} firing for every replica`, timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(performance.now() - stoppedAt).toBeGreaterThanOrEqual(SHORTENED_FOR_MS);
    // It waited its `for` pending first.
    expect(states).toContain('pending');
    expect(firing.map((alert) => `${alert.labels.instance} ${alert.labels.mode} ${alert.labels.severity}`).sort()).toEqual(
      targets.map((target) => `${target} local warning`).sort(),
    );
    expect(firing[0]!.annotations.summary).toMatch(/has been off the shared vendor budget \(local\)/);
    // On its own share a replica is degraded, still ready: nobody is told that no replica is.
    expect(await readyReplicas()).toEqual([String(fleet.gateways.length)]);
    expect(await fallbackAlerts(NO_REPLICA_READY_ALERT)).toEqual([]);
  }, 60_000);
});
