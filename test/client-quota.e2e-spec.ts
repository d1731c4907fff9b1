/**
 * Per-client quotas across replicas: two real gateway processes share one private Redis, so a
 * client over its quota is refused on every replica while another client is still served.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { until, waitFor } from './support/async-probes.js';
import { createRoom, waitForLimiterMode } from './support/fleet.js';
import { metricSum, scrapeMetrics } from './support/prometheus-text.js';
import { monitorRedis, type RedisMonitor } from './support/redis-monitor.js';
import type { GatewayProcess } from './support/gateway-process.js';
import { scenario } from './support/scenario.js';

const APP_ID = 1618033988;
const SECRET = 'SENTINEL-secret-quota-7b3e91c5a08d24f6';
const KEY_A = 'sk-SENTINEL-quota-a-2c8e5f1a9b47d603';
const KEY_B = 'sk-SENTINEL-quota-b-6d09a3e7c15b82f4';
const KEY_C = 'sk-SENTINEL-quota-c-91f4b0d2e7a3c568';
const QUOTA_A = 5;
const QUOTA_C = 5;

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { 'client-a': KEY_A, 'client-b': KEY_B, 'client-c': KEY_C },
  env: {
    ZEGO_DEFAULT_FROM_USER_ID: 'quota-operator',
    CLIENT_RATE_LIMIT: '50',
    CLIENT_RATE_LIMITS: `client-a:${QUOTA_A},client-c:${QUOTA_C}`,
  },
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

describe('a client over quota is refused by the replica that knows it, without a Redis call', () => {
  const prefix = `quota-local-${randomUUID().slice(0, 8)}`;
  const quotaKey = `${prefix}:quota:{client-c}`;
  const refusals = (metrics: Awaited<ReturnType<typeof scrapeMetrics>>, decidedBy: string): number =>
    metricSum(metrics, 'zim_gateway_client_quota_refusals_total', { client: 'client-c', decided_by: decidedBy });
  let gateways: GatewayProcess[];
  let monitor: RedisMonitor;
  // Script runs only: MONITOR also lists the commands a script makes, and the test's own reads.
  const quotaCommands = (): string[][] => monitor.commands().filter((args) => isScriptRun(args) && args.includes(quotaKey));

  beforeAll(async () => {
    const shared = {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: prefix,
      REDIS_COMMAND_TIMEOUT_MS: '2000',
      // Twenty knocks one after another inside the quota's second: answered at once.
      CLIENT_QUOTA_REFUSAL_DELAY_MS: '0',
    };
    gateways = await Promise.all([s.startGateway(shared), s.startGateway(shared), s.startGateway(shared)]);
    await Promise.all(gateways.map((g) => waitForLimiterMode(g, 'shared')));
    monitor = await monitorRedis(redis.url);
  }, 60_000);

  afterAll(() => monitor.stop());

  it('answers knocks locally until the slot frees, admits at that time, and the other replicas still refuse', async () => {
    const [a, b, c] = gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    const admitted = [];
    for (let i = 0; i < QUOTA_C; i++) admitted.push(await createRoom(a.url, KEY_C, `quota-c-${++counter}`, 10_000));
    expect(admitted.map((x) => x.status)).toEqual(Array(QUOTA_C).fill(201));
    const [, oldestScore] = await monitorless(redis.url, (r) => r.zrange(quotaKey, '0', '0', 'WITHSCORES'));

    const knocks = [];
    for (let i = 0; i < 20; i++) knocks.push(await createRoom(a.url, KEY_C, `quota-c-${++counter}`, 10_000));
    expect(knocks.map((x) => x.status)).toEqual(Array(20).fill(429));
    // The fleet's count still refuses on the replicas that were never told.
    expect((await createRoom(b.url, KEY_C, `quota-c-${++counter}`, 10_000)).status).toBe(429);
    expect((await createRoom(c.url, KEY_C, `quota-c-${++counter}`, 10_000)).status).toBe(429);

    const onA = await scrapeMetrics(a.url);
    // Each knock on A was decided by A alone or by a Redis call; most never reached Redis.
    expect(refusals(onA, 'replica') + refusals(onA, 'shared_store')).toBe(20);
    expect(refusals(onA, 'replica')).toBeGreaterThanOrEqual(15);
    const asked = QUOTA_C + refusals(onA, 'shared_store') + 2;
    await until(() => quotaCommands().length >= asked, 'the monitor saw the quota calls');
    expect(quotaCommands()).toHaveLength(asked);

    let answer = knocks[0]!;
    await waitFor(
      async () => {
        answer = await createRoom(a.url, KEY_C, `quota-c-${++counter}`, 10_000);
        return answer.status === 201;
      },
      { what: 'client-c is admitted on A again', intervalMs: 10, timeoutMs: 5_000 },
    );
    const [, newestScore] = await monitorless(redis.url, (r) => r.zrange(quotaKey, '-1', '-1', 'WITHSCORES'));
    // Admitted once the oldest admission left the window, and not much later: A's own refusal ends then too.
    const lateMs = Number(newestScore) - (Number(oldestScore) + 1000);
    expect(lateMs).toBeGreaterThanOrEqual(-1);
    expect(lateMs).toBeLessThan(150);
  }, 60_000);

  it('three replicas flooded together admit no more than the quota, counted at the vendor', async () => {
    const before = new Set(fake.createdRooms);
    const started = Date.now();
    const flood = async (gateway: GatewayProcess): Promise<void> => {
      while (Date.now() - started < 3_000) await createRoom(gateway.url, KEY_C, `quota-c-${++counter}`, 10_000);
    };
    await Promise.all(gateways.flatMap((g) => [flood(g), flood(g), flood(g)]));
    const elapsedMs = Date.now() - started;
    const created = fake.createdRooms.filter((room) => room.startsWith('quota-c-') && !before.has(room));
    expect(created.length).toBeGreaterThan(0);
    expect(created.length).toBeLessThanOrEqual(mostAdmitted(QUOTA_C, elapsedMs));
    const decidedAlone = await Promise.all(gateways.map(async (g) => refusals(await scrapeMetrics(g.url), 'replica')));
    expect(decidedAlone.every((n) => n > 20)).toBe(true);
  }, 60_000);
});

const isScriptRun = (args: readonly string[]): boolean => /^eval(sha)?$/i.test(args[0] ?? '');

/** A short-lived plain connection for one read (the monitor connection cannot run commands). */
async function monitorless<T>(url: string, read: (redis: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(url);
  try {
    return await read(client);
  } finally {
    client.disconnect();
  }
}

describe('a caller looping on its 429: each refusal held CLIENT_QUOTA_REFUSAL_DELAY_MS', () => {
  const DELAY_MS = 200;
  const LOOPERS = 8;

  it('gets at most one refusal per looper and delay, none sooner than the delay, and is admitted again by its quota', async () => {
    const gateway = await s.startGateway({ CLIENT_QUOTA_REFUSAL_DELAY_MS: String(DELAY_MS) });
    const started = performance.now();
    const answers: Array<{ status: number; latencyMs: number }> = [];
    const loop = async (): Promise<void> => {
      while (performance.now() - started < 2_000) answers.push(await createRoom(gateway.url, KEY_A, `quota-loop-${++counter}`, 10_000));
    };
    await Promise.all(Array.from({ length: LOOPERS }, loop));
    const elapsedMs = performance.now() - started;

    const refused = answers.filter((a) => a.status === 429);
    const created = answers.filter((a) => a.status === 201);
    expect(refused.length + created.length).toBe(answers.length);
    // Held, never answered early: a timer does not fire before its time.
    expect(Math.min(...refused.map((a) => a.latencyMs))).toBeGreaterThanOrEqual(DELAY_MS - 1);
    // Without the delay, eight loopers get thousands in two seconds.
    expect(refused.length).toBeLessThanOrEqual(LOOPERS * Math.ceil(elapsedMs / DELAY_MS));
    // The quota still admits what it allows, the delay takes nothing from it.
    expect(created.length).toBeGreaterThanOrEqual(QUOTA_A);
    expect(created.length).toBeLessThanOrEqual(mostAdmitted(QUOTA_A, elapsedMs));
  }, 60_000);
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
