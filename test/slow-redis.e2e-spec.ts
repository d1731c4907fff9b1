/**
 * A Redis that is slow, not down: one gateway reaches its Redis through a TCP path (a proxy in its
 * own process) that delays every chunk by a fixed one-way time, in order. Whatever the round trip,
 * every request ends within its deadline, as a 201, the budget's 429 or the policy's answer, and
 * none is still open at the deadline plus a second (the overdue guard counts none). Below
 * RATE_LIMIT_SLOW_REDIS_MS the budget stays shared; past it, the budget alone goes to the local
 * share, logged and counted with the reason `slow`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import { createRoom } from './support/fleet.js';
import { waitFor } from './support/async-probes.js';
import { metricSum, scrapeMetrics, type MetricSample } from './support/prometheus-text.js';
import { scenario } from './support/scenario.js';
import { startTcpProxy, stopAllTcpProxies, type TcpProxyProcess } from './support/tcp-proxy-process.js';

const APP_ID = 2147480017;
const SECRET = 'SENTINEL-secret-slow-redis-5b1e7d93a2c4';
const KEY = 'sk-SENTINEL-slow-redis-0c8f3a61e5d2';
const DEADLINE_MS = 10_000;
/** Longer than any answer may take: a request still open then would be a hang. */
const CLIENT_TIMEOUT_MS = 30_000;
const REQUESTS = 6;

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { slow: KEY },
  redis: 'private',
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'slow-operator', ZEGO_CALL_DEADLINE_MS: String(DEADLINE_MS) },
});
let proxy: TcpProxyProcess;
beforeAll(async () => {
  proxy = await startTcpProxy({ target: `127.0.0.1:${s.redis.port}` });
});
afterAll(() => stopAllTcpProxies());

/**
 * A gateway whose Redis is `oneWayMs` away each way from the start, its sequential requests'
 * answers, and its metrics once `settled` holds of them (polled).
 */
async function sequentialRequests(oneWayMs: number, settled: (metrics: MetricSample[]) => boolean = () => true) {
  await proxy.shape({ upstream: { delayMs: oneWayMs }, downstream: { delayMs: oneWayMs } });
  const gateway = await s.startGateway({ REDIS_URL: proxy.url('redis') });
  const answers: Array<{ status: number; ms: number }> = [];
  for (let i = 0; i < REQUESTS; i++) {
    const started = performance.now();
    const { status } = await createRoom(gateway.url, KEY, `slow-${oneWayMs}-${i}-${Date.now() % 1e6}`, CLIENT_TIMEOUT_MS);
    answers.push({ status, ms: Math.round(performance.now() - started) });
  }
  let metrics: MetricSample[] = [];
  await waitFor(async () => settled((metrics = await scrapeMetrics(gateway.url))), { what: 'the metrics settled', timeoutMs: 15_000, intervalMs: 100 });
  await gateway.stop();
  return { gateway, answers, metrics };
}

describe.each([15, 25])('one gateway, Redis %i ms away each way (below RATE_LIMIT_SLOW_REDIS_MS)', (oneWayMs) => {
  it('creates every room within the deadline, on the shared budget', async () => {
    const { answers, metrics } = await sequentialRequests(oneWayMs);
    expect(answers.filter((a) => a.status !== 201 || a.ms > DEADLINE_MS)).toEqual([]);
    expect(metricSum(metrics, 'zim_gateway_overdue_requests_total')).toBe(0);
    expect(metricSum(metrics, 'zim_gateway_outbound_limiter_mode', { mode: 'shared' })).toBe(1);
  }, 120_000);
});

describe('one gateway, Redis 60 ms away each way (past RATE_LIMIT_SLOW_REDIS_MS)', () => {
  it('ends every request within the deadline and takes the budget to its own share, logged and counted as slow', async () => {
    const { gateway, answers, metrics } = await sequentialRequests(
      60,
      (metrics) => metricSum(metrics, 'zim_gateway_outbound_limiter_mode', { mode: 'local' }) === 1,
    );
    expect(answers.filter((a) => ![201, 429].includes(a.status) || a.ms > DEADLINE_MS)).toEqual([]);
    expect(answers.filter((a) => a.status === 201).length).toBeGreaterThan(0);
    expect(metricSum(metrics, 'zim_gateway_overdue_requests_total')).toBe(0);
    expect(metricSum(metrics, 'zim_gateway_outbound_limiter_mode', { mode: 'local' })).toBe(1);
    expect(metricSum(metrics, 'zim_gateway_outbound_limiter_mode_changes_total', { mode: 'local', reason: 'slow' })).toBe(1);
    const slowLine = gateway.logLines().find((line) => String(line.message).startsWith('Outbound limiter mode: local (slow:'));
    expect(slowLine?.level).toBe('warn');
  }, 120_000);
});
