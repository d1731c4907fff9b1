/**
 * The level a request waits at for the vendor budget, end to end on the real process sharing a
 * private Redis: CLIENT_PRIORITIES sets a client's level, `X-Priority: batch` lowers a request's
 * own, nothing raises it; any other value is a 400 naming the header that never reaches the
 * vendor. The level each call waited at shows in /metrics, by client, and so does each waiting
 * client's fair share.
 */
import { describe, expect, it } from '@jest/globals';
import { until } from './support/async-probes.js';
import { expectErrorBody } from './support/error-body.js';
import { waitForLimiterMode } from './support/fleet.js';
import { HttpRecorder } from './support/http-recorder.js';
import { metricSamples, metricSum, scrapeMetrics, type MetricSample } from './support/prometheus-text.js';
import { scenario } from './support/scenario.js';

const APP_ID = 2718281828;
const SECRET = 'SENTINEL-secret-priority-5e1b9c3a7d20f846';
const WEB = 'sk-SENTINEL-priority-web-8a2d6f0c4e91b357';
const NIGHTLY = 'sk-SENTINEL-priority-nightly-3f7b1d9e5c08a246';
const GRANTED = 'zim_gateway_outbound_slots_granted_total';

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { web: WEB, nightly: NIGHTLY },
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'priority-operator', CLIENT_PRIORITIES: 'nightly:batch' },
  redis: 'private',
});
const { fake } = s;
const gateway = s.gatewayBeforeAll(async () => ({ REDIS_URL: s.redis.url }));
const http = new HttpRecorder();
let rooms = 0;

function create(url: string, key: string, headers: Record<string, string> = {}) {
  return http.request(`${url}/rooms`, {
    method: 'POST',
    headers: { ...headers, Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ roomId: `priority-${++rooms}`, roomName: 'priority' }),
  });
}

describe('X-Priority and CLIENT_PRIORITIES', () => {
  it.each([['urgent'], ['batch, batch'], ['0']])('refuses X-Priority: %j with a 400 naming the header, before the vendor', async (value) => {
    const callsBefore = fake.calls.length;
    const answer = await create(gateway.url, WEB, { 'X-Priority': value });
    const body = expectErrorBody(answer, 400);
    expect(body['errors']).toEqual([{ field: 'X-Priority', reason: 'must be interactive or batch, sent once' }]);
    expect(fake.calls.length).toBe(callsBefore);
  });

  it("waits at the level a request asks for below its client's, never above it", async () => {
    await waitForLimiterMode(gateway, 'shared');
    const before = await scrapeMetrics(gateway.url);
    const answers = [
      await create(gateway.url, WEB),
      await create(gateway.url, WEB, { 'X-Priority': 'Batch' }),
      await create(gateway.url, WEB, { 'X-Priority': 'interactive' }),
      await create(gateway.url, NIGHTLY),
      await create(gateway.url, NIGHTLY, { 'X-Priority': 'interactive' }),
    ];
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 201, 201]);
    const after = await scrapeMetrics(gateway.url);
    const granted = (client: string, priority: string): number =>
      metricSum(after, GRANTED, { client, priority }) - metricSum(before, GRANTED, { client, priority });
    expect({
      web: { interactive: granted('web', 'interactive'), batch: granted('web', 'batch') },
      nightly: { interactive: granted('nightly', 'interactive'), batch: granted('nightly', 'batch') },
    }).toEqual({ web: { interactive: 2, batch: 1 }, nightly: { interactive: 0, batch: 2 } });
    const waits = (client: string, priority: string): number =>
      metricSum(after, 'zim_gateway_outbound_limiter_wait_seconds_count', { outcome: 'granted', client, priority }) -
      metricSum(before, 'zim_gateway_outbound_limiter_wait_seconds_count', { outcome: 'granted', client, priority });
    expect([waits('web', 'interactive'), waits('web', 'batch'), waits('nightly', 'batch')]).toEqual([2, 1, 2]);
    expect(metricSum(after, 'zim_gateway_fleet_members', { state: 'active' })).toBe(1);
  });

  it('shows the fair share of each client while it waits: interactive less the batch minimum, batch that minimum', async () => {
    // One call a second, a quarter of them for batch while both levels wait: after the first call,
    // the others wait, at both levels.
    const strict = await s.startGateway({
      REDIS_URL: s.redis.url,
      REDIS_KEY_PREFIX: 'priority-strict',
      ZEGO_QPS_LIMIT: '1',
      RATE_LIMIT_MAX_WAIT_MS: '8000',
      RATE_LIMIT_BATCH_MIN_SHARE: '0.25',
    });
    await waitForLimiterMode(strict, 'shared');
    const first = await create(strict.url, WEB);
    expect(first.status).toBe(201);
    const waiting = [create(strict.url, WEB), create(strict.url, WEB), create(strict.url, NIGHTLY)];
    let shares: MetricSample[] = [];
    await until(async () => {
      shares = metricSamples(await scrapeMetrics(strict.url), 'zim_gateway_outbound_fair_share');
      return shares.length === 2;
    }, 'both waiting clients in zim_gateway_outbound_fair_share');
    // The budget's rate: 1 call per window plus the 30 ms margin.
    const perSecond = 1000 / 1030;
    const share = (client: string): number | undefined => shares.find((sample) => sample.labels['client'] === client)?.value;
    expect(shares.map((sample) => sample.labels['priority']).sort()).toEqual(['batch', 'interactive']);
    expect(share('web')).toBeCloseTo(perSecond * 0.75, 6);
    expect(share('nightly')).toBeCloseTo(perSecond * 0.25, 6);
    expect((await Promise.all(waiting)).map((a) => a.status)).toEqual([201, 201, 201]);
  }, 30_000);
});
