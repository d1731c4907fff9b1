/**
 * The shared outbound limiter seen from callers, with real gateway processes and a private Redis:
 * a budget of one call per second makes every slot easy to see. A refused wait costs nothing; a
 * caller that hangs up frees its slot for the others, on any replica; and with
 * RATE_LIMIT_ON_REDIS_DOWN=reject a Redis outage is answered 503, never a guess.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { waitFor } from './support/async-probes.js';
import { createRoom, waitForLimiterMode } from './support/fleet.js';
import type { EnvLayer } from './support/gateway-env.js';
import type { GatewayProcess } from './support/gateway-process.js';
import { scenario } from './support/scenario.js';

const APP_ID = 1732050807;
const SECRET = 'SENTINEL-secret-outbound-2f9c4a71e0b8d365';
const KEY = 'sk-SENTINEL-outbound-8e3b0d52c7a19f64';
// One call per 1000 ms, slots 1050 ms apart: the second caller waits about a second.
const BUDGET = { ZEGO_QPS_LIMIT: '1', ZEGO_QPS_WINDOW_MS: '1000', RATE_LIMIT_SAFETY_MARGIN_MS: '50' };

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET, qpsLimit: 1 },
  apiKeys: { 'svc-outbound': KEY },
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'outbound-operator', ...BUDGET },
  redis: 'private',
});
const { fake, redis } = s;
let counter = 0;
const roomId = (): string => `outbound-${++counter}`;

/** `count` replicas sharing Redis under a key prefix of their own, each in shared limiter mode. */
async function sharedReplicas(count: number, extra: EnvLayer): Promise<GatewayProcess[]> {
  const shared = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `outbound-${randomUUID().slice(0, 8)}`, ...extra };
  const gateways = await Promise.all(Array.from({ length: count }, () => s.startGateway(shared)));
  await Promise.all(
    gateways.map((g) => waitForLimiterMode(g, 'shared')),
  );
  return gateways;
}

describe('waiting for a slot, across replicas', () => {
  let gateways: GatewayProcess[];
  beforeAll(async () => {
    gateways = await sharedReplicas(2, { RATE_LIMIT_MAX_WAIT_MS: '1500' });
  }, 60_000);

  it('refuses at once, with Retry-After and without a vendor call, a caller whose slot is too far away', async () => {
    const callsBefore = fake.calls.length;
    const first = createRoom(gateways[0]!.url, KEY, roomId(), 10_000);
    const second = createRoom(gateways[1]!.url, KEY, roomId(), 10_000);
    // Sent once both are in line: the two slots ahead of it are now and ~1 s away, its own ~2.1 s.
    await waitFor(async () => (await callersInLine()) >= 2, { what: 'two callers in line' });
    const third = await createRoom(gateways[0]!.url, KEY, roomId(), 10_000);
    expect(third.status).toBe(429);
    // Its slot was about 2.1 s away, less the time since the first was reserved.
    expect(['2', '3']).toContain(third.retryAfter);
    expect((await first).status).toBe(201);
    expect((await second).status).toBe(201);
    expect(fake.calls.length - callsBefore).toBe(2);
    // The vendor never saw two calls within its window.
    expect(fake.calls.filter((c) => c.code === 660300005)).toHaveLength(0);
  });

  it('gives the slot of a caller that hung up to the next caller, on another replica', async () => {
    await waitFor(async () => (await callersInLine()) === 0, { what: 'the log to empty', timeoutMs: 5_000 });
    const callsBefore = fake.calls.length;
    const first = createRoom(gateways[0]!.url, KEY, roomId(), 10_000);
    await waitFor(async () => (await callersInLine()) >= 1, { what: 'the first slot reserved' });
    // This caller waits for the slot ~1 s away, then hangs up after 200 ms.
    const quitter = createRoom(gateways[1]!.url, KEY, roomId(), 200);
    await waitFor(async () => (await callersInLine()) >= 2, { what: 'the quitter in line' });
    // Named with its status when it was answered instead.
    const { status, error, body } = await quitter;
    expect({ status, error, body }).toEqual({ status: 0, error: expect.stringMatching(/TimeoutError|AbortError/), body: undefined });
    await waitFor(async () => (await callersInLine()) === 1, { what: 'the quitter’s place given back' });
    // Had the slot been kept, the next one would be ~2 s away: over the 1.5 s wait, a 429.
    const next = await createRoom(gateways[0]!.url, KEY, roomId(), 10_000);
    expect(next.status).toBe(201);
    expect((await first).status).toBe(201);
    expect(fake.calls.length - callsBefore).toBe(2);
  });

  /** Callers with a slot in the log (recent or to come) or a ticket in a queue, over every budget in Redis. */
  async function callersInLine(): Promise<number> {
    const client = new Redis(redis.url);
    try {
      const keys = await client.keys('*:{outbound:*}:*');
      let total = 0;
      for (const key of keys.filter((k) => /:(slots|queue:interactive|queue:batch)$/.test(k))) {
        total += await client.zcount(key, '-inf', '+inf');
      }
      return total;
    } finally {
      await client.quit();
    }
  }
});

describe('RATE_LIMIT_ON_REDIS_DOWN=reject', () => {
  it('answers 503 with Retry-After while Redis is down, and serves again once it is back', async () => {
    const [gateway] = await sharedReplicas(1, { RATE_LIMIT_ON_REDIS_DOWN: 'reject' });
    // The other suite's replicas used a different log: the vendor's window starts empty here.
    fake.reset();
    const mark = gateway!.logMark();
    await redis.stop();
    await waitForLimiterMode(gateway!, 'reject', { since: mark });
    const callsBefore = fake.calls.length;
    const refused = await createRoom(gateway!.url, KEY, roomId(), 10_000);
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toBe('1');
    expect(fake.calls.length).toBe(callsBefore);

    await redis.restart();
    await waitForLimiterMode(gateway!, 'shared', { since: mark });
    expect((await createRoom(gateway!.url, KEY, roomId(), 10_000)).status).toBe(201);
  }, 60_000);
});
