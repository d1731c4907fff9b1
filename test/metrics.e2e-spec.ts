/**
 * GET /metrics on the real process: Prometheus text with process metrics, requests by route,
 * status and client, vendor calls by outcome and Code, vendor latency, limiter waits, refusals,
 * mode and retries; overdue requests (none after normal traffic); and never an API key or the secret.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { sha256Hex } from './support/api-keys.js';
import { until } from './support/async-probes.js';
import { createRoom } from './support/fleet.js';
import type { GatewayProcess } from './support/gateway-process.js';
import { scenario } from './support/scenario.js';

const APP_ID = 3316624790;
const SECRET = 'SENTINEL-secret-metrics-1e6c8a4f20d97b35';
const KEY = 'sk-SENTINEL-metrics-7c2e0a9d4b61f853';
const WRONG_KEY = 'sk-SENTINEL-metrics-wrong-5d3b1f7e9a20c648';

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { 'svc-metrics': KEY },
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'metrics-operator' },
});
const { fake } = s;
const gateway = s.gatewayBeforeAll();

/** The last scrape. */
let text: string;
let contentType: string | null;

/** The value of one sample, or undefined when the series is absent. */
function sample(name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labelText = line.slice(name.length + 1, line.lastIndexOf('}'));
    const have = labelText.split(',');
    if (wanted.every((w) => have.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

async function scrape(target: GatewayProcess): Promise<void> {
  const response = await fetch(`${target.url}/metrics`);
  expect(response.status).toBe(200);
  contentType = response.headers.get('content-type');
  text = await response.text();
}

beforeAll(async () => {
  fake.injectFault({ kind: 'code', code: 1, times: 1 }); // busy once: the retry creates the room
  expect((await createRoom(gateway.url, KEY, 'metrics-1', 10_000)).status).toBe(201);
  expect((await createRoom(gateway.url, WRONG_KEY, 'metrics-2', 10_000)).status).toBe(401);
  expect((await fetch(`${gateway.url}/no/such/route?x=1`)).status).toBe(404);
  await scrape(gateway);
}, 60_000);

describe('GET /metrics', () => {
  it('is Prometheus text with the process metrics, and needs no API key', () => {
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });

  it('counts requests by route pattern, status and client id', () => {
    expect(sample('zim_gateway_http_requests_total', { route: '/rooms', status: '201', client: 'svc-metrics' })).toBe(1);
    expect(sample('zim_gateway_http_requests_total', { route: '/rooms', status: '401', client: 'none' })).toBe(1);
    // Unknown URLs share one label value, whatever their path.
    expect(sample('zim_gateway_http_requests_total', { route: 'unmatched', status: '404' })).toBe(1);
    expect(text).not.toContain('/no/such/route');
  });

  it('counts vendor calls by outcome and Code, retries, and their latency', () => {
    expect(sample('zim_gateway_vendor_calls_total', { outcome: 'success', code: '0' })).toBe(1);
    expect(sample('zim_gateway_vendor_calls_total', { outcome: 'vendor-busy', code: '1' })).toBe(1);
    expect(sample('zim_gateway_vendor_retries_total', { outcome: 'vendor-busy' })).toBe(1);
    expect(sample('zim_gateway_vendor_call_duration_seconds_count', { outcome: 'success' })).toBe(1);
  });

  it('counts no overdue request after normal traffic, with a series for every stage from the start', () => {
    const overdue = text.split('\n').filter((line) => line.startsWith('zim_gateway_overdue_requests_total{'));
    for (const waitingOn of ['request body', 'handler', 'client quota', 'idempotency key', 'outbound slot', 'vendor attempt 1', 'retry backoff']) {
      expect(sample('zim_gateway_overdue_requests_total', { waiting_on: waitingOn })).toBe(0);
    }
    expect(overdue.filter((line) => !line.endsWith(' 0'))).toEqual([]);
  });

  it('never shows a key, its hash or the secret', () => {
    for (const secret of [SECRET, KEY, WRONG_KEY, sha256Hex(KEY)]) expect(text).not.toContain(secret);
  });

  it('reports the vendor connections: set-up ahead of need and none on a call\'s path, slot to wire, answers, the pool', () => {
    expect(sample('zim_gateway_vendor_connect_seconds_count', { when: 'ahead' })).toBeGreaterThanOrEqual(1);
    expect(sample('zim_gateway_vendor_connect_seconds_count', { when: 'on_path' }) ?? 0).toBe(0);
    // Both attempts of the retried call went out on their slots, and were answered.
    expect(text).toMatch(/^zim_gateway_vendor_slot_to_wire_seconds_count 2$/m);
    expect(text).toMatch(/^zim_gateway_vendor_answer_seconds_count 2$/m);
    expect(sample('zim_gateway_vendor_connections', { state: 'idle' })).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^zim_gateway_vendor_connection_limit \d+$/m);
    expect(text).toMatch(/^zim_gateway_vendor_resends_total 0$/m);
    expect(text).toMatch(/^zim_gateway_outbound_unready_slots_total \d+$/m);
  });

  it('reports limiter waits, refusals and mode', async () => {
    expect(sample('zim_gateway_outbound_limiter_wait_seconds_count', { outcome: 'granted' })).toBe(2);
    expect(sample('zim_gateway_outbound_limiter_mode', { mode: 'local' })).toBe(1);
    // Exported from the start. Its value is the machine's, not the gateway's: a caller whose event
    // loop stalls past its slot trades it for a new one (counted in the limiters' own specs).
    expect(text).toMatch(/^zim_gateway_outbound_late_slots_total \d+$/m);
    expect(text).toMatch(/^zim_gateway_outbound_late_wires_total \d+$/m);
    // One call a minute: the second call finds the budget spent for longer than it may wait.
    const strict = await s.startGateway({ ZEGO_QPS_LIMIT: '1', ZEGO_QPS_WINDOW_MS: '60000', RATE_LIMIT_MAX_WAIT_MS: '100' });
    // A wait this short leaves no time for the first vendor connection to become warm.
    await until(async () => {
      await scrape(strict);
      return (sample('zim_gateway_vendor_connections', { state: 'idle' }) ?? 0) >= 1;
    }, 'a warm vendor connection');
    expect((await createRoom(strict.url, KEY, 'metrics-3', 10_000)).status).toBe(201);
    expect((await createRoom(strict.url, KEY, 'metrics-4', 10_000)).status).toBe(429);
    await scrape(strict);
    expect(sample('zim_gateway_outbound_limiter_wait_seconds_count', { outcome: 'granted' })).toBe(1);
    expect(sample('zim_gateway_outbound_limiter_wait_seconds_count', { outcome: 'refused' })).toBe(1);
    expect(sample('zim_gateway_outbound_limiter_refusals_total', { reason: 'refused' })).toBe(1);
    expect(sample('zim_gateway_http_requests_total', { route: '/rooms', status: '429', client: 'svc-metrics' })).toBe(1);
  });
});
