/**
 * Per-client quotas across replicas: two real gateway processes share one private Redis, so a
 * client over its quota is refused on every replica while another client is still served.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createRoom, waitForLimiterMode } from './support/fleet.js';
import type { GatewayProcess } from './support/gateway-process.js';
import { scenario } from './support/scenario.js';

const APP_ID = 1618033988;
const SECRET = 'SENTINEL-secret-quota-7b3e91c5a08d24f6';
const KEY_A = 'sk-SENTINEL-quota-a-2c8e5f1a9b47d603';
const KEY_B = 'sk-SENTINEL-quota-b-6d09a3e7c15b82f4';
const QUOTA_A = 5;

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { 'client-a': KEY_A, 'client-b': KEY_B },
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'quota-operator', CLIENT_RATE_LIMIT: '50', CLIENT_RATE_LIMITS: `client-a:${QUOTA_A}` },
  redis: 'test',
});
const { fake, redis } = s;
let counter = 0;

/** `count` concurrent requests of one client, spread over the replicas in turn. */
async function burst(gateways: readonly GatewayProcess[], key: string, count: number) {
  const started = Date.now();
  const answers = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      createRoom(gateways[i % gateways.length]!.url, key, `quota-${++counter}`, 10_000),
    ),
  );
  return { answers, elapsedMs: Date.now() - started };
}

/** The most a sliding one-second quota can admit over `elapsedMs`. */
const mostAdmitted = (quota: number, elapsedMs: number): number => quota * Math.max(1, Math.ceil(elapsedMs / 1000));

describe('per-client quota across two replicas sharing Redis', () => {
  const prefix = `quota-test-${randomUUID().slice(0, 8)}`;
  let gateways: GatewayProcess[];

  beforeAll(async () => {
    const shared = {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: prefix,
      // Other suites load the same 2 cores: a slow answer must not send a hit to the fallback here.
      REDIS_COMMAND_TIMEOUT_MS: '2000',
    };
    gateways = await Promise.all([s.startGateway(shared), s.startGateway(shared)]);
    // Listening comes before the Redis connection is ready; until then quotas are per replica.
    await Promise.all(
      gateways.map((g) => waitForLimiterMode(g, 'shared')),
    );
  }, 60_000);

  it('refuses a client over its quota on both replicas with 429 and Retry-After, and still serves another client', async () => {
    const callsBefore = fake.calls.length;
    const { answers, elapsedMs } = await burst(gateways, KEY_A, 4 * QUOTA_A);
    const created = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status === 429);

    expect(created.length + refused.length).toBe(answers.length);
    // Two replicas counting separately would admit twice the quota.
    expect(created.length).toBeLessThanOrEqual(mostAdmitted(QUOTA_A, elapsedMs));
    expect(refused.length).toBeGreaterThan(0);
    for (const answer of refused) expect(answer.retryAfter).toMatch(/^[1-9]\d*$/);
    // Refused requests never reach the vendor.
    expect(fake.calls.length - callsBefore).toBe(created.length);

    const other = await createRoom(gateways[1]!.url, KEY_B, `quota-b-${++counter}`, 10_000);
    expect(other.status).toBe(201);
  });

  it('explains the refusal in the error body and counts in Redis under a hash-tagged key per client', async () => {
    const responses = await Promise.all(
      Array.from({ length: 4 * QUOTA_A }, (_, i) =>
        fetch(`${gateways[i % 2]!.url}/rooms`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${KEY_A}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ roomId: `quota-${++counter}` }),
        }),
      ),
    );
    const refused = responses.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    const body = (await refused[0]!.json()) as { statusCode: number; message: string };
    expect(body.statusCode).toBe(429);
    expect(body.message).toContain(`quota of ${QUOTA_A} requests per second`);

    // Keys live as long as their window: client-b's first one may have expired since.
    expect((await createRoom(gateways[0]!.url, KEY_B, `quota-b-${++counter}`, 10_000)).status).toBe(201);
    const client = new Redis(redis.url, { lazyConnect: true });
    await client.connect();
    try {
      const keys = await client.keys(`${prefix}:*`);
      expect(keys).toContain(`${prefix}:quota:{client-a}`);
      expect(keys).toContain(`${prefix}:quota:{client-b}`);
    } finally {
      await client.quit();
    }
  });
});

describe('per-client quota without Redis (one replica)', () => {
  it('enforces the quota in process', async () => {
    const gateway = await s.startGateway();
    const { answers, elapsedMs } = await burst([gateway], KEY_A, 4 * QUOTA_A);
    const created = answers.filter((a) => a.status === 201).length;
    expect(created).toBeLessThanOrEqual(mostAdmitted(QUOTA_A, elapsedMs));
    expect(answers.filter((a) => a.status === 429).length).toBe(answers.length - created);
    expect(created).toBeGreaterThan(0);
  }, 60_000);
});
