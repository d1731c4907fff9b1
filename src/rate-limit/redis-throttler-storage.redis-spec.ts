import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { until, waitFor } from '../../test/support/async-probes.js';
import { RedisClients } from '../../test/support/redis-clients.js';
import { monitorRedis, type RedisMonitor } from '../../test/support/redis-monitor.js';
import { startPrivateRedis, startTestRedis, stopAllRedis, type TestRedis } from '../../test/support/redis-server.js';
import { RedisDownPolicy } from '../redis/redis-down-policy.js';
import { RedisKeys } from '../redis/redis-keys.js';
import type { RedisDownFallback } from '../redis/redis.settings.js';
import { SharedStoreUnavailable } from '../redis/shared-store-unavailable.js';
import { ClientQuotaEvents, type QuotaDecider } from './client-quota-events.js';
import { InProcessThrottlerStorage } from './in-process-throttler-storage.js';
import { RedisThrottlerStorage } from './redis-throttler-storage.js';

/** RATE_LIMIT_ON_REDIS_DOWN and RATE_LIMIT_REPLICAS, as the storage's Redis-down policy gets them. */
interface QuotaFallback {
  policy: RedisDownFallback;
  assumedReplicas: number;
}

const LOCAL: QuotaFallback = { policy: 'local', assumedReplicas: 3 };
const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };

/** The storage as the gateway wires it (keys under `prefix`, its own Redis-down policy), and the key of a client. */
class QuotaStorage extends RedisThrottlerStorage {
  private readonly names: RedisKeys;

  constructor(
    redis: Redis,
    prefix: string,
    fallback: QuotaFallback,
    local?: InProcessThrottlerStorage,
    readonly quotaEvents = new ClientQuotaEvents(),
    readonly downPolicy = new RedisDownPolicy(redis, { fallback: fallback.policy, assumedReplicas: fallback.assumedReplicas, slowRoundTripMs: 75 }, silent),
  ) {
    const names = new RedisKeys(prefix);
    super(redis, names, downPolicy, { local, events: quotaEvents });
    this.names = names;
  }

  redisKey(client: string): string {
    return this.names.clientQuota(client);
  }
}
/** Redis TIME keeps 0.1 ms in the Lua cut-off (tostring): admissions may come that much early. */
const LUA_ROUNDING_MS = 0.1;

// ------------------------------------------------------------------ helpers

const clients = new RedisClients();

/** A connected plain client (the storage only uses a connection whose status is 'ready'). */
async function connect(url: string): Promise<Redis> {
  const redis = clients.plain(url);
  await redis.ping();
  return redis;
}

/** A client id of its own for each test. */
const freshClient = (): string => `client-${randomUUID()}`;
const freshPrefix = (): string => `test-${randomUUID().slice(0, 8)}`;

/** MONITOR connections, closed after each test. */
const monitors: RedisMonitor[] = [];

afterEach(() => {
  for (const monitor of monitors.splice(0)) monitor.stop();
  return clients.closeAll();
});
afterAll(stopAllRedis);

// ------------------------------------------------------------------ tests

describe('RedisThrottlerStorage with Redis up', () => {
  let server: TestRedis;

  beforeAll(async () => {
    server = await startTestRedis();
  });

  it('admits `limit` hits per window, then refuses with a Retry-After in whole seconds', async () => {
    const redis = await connect(server.url);
    const storage = new QuotaStorage(redis, freshPrefix(), LOCAL);
    const client = freshClient();

    const t0 = performance.now();
    const admitted = [];
    for (let i = 0; i < 3; i++) admitted.push(await storage.increment(client, 60_000, 3));
    const refused = await storage.increment(client, 60_000, 3);
    const t1 = performance.now();

    expect(admitted.map((r) => [r.totalHits, r.isBlocked, r.timeToBlockExpire])).toEqual([
      [1, false, 0],
      [2, false, 0],
      [3, false, 0],
    ]);
    for (const record of admitted) expect(record.timeToExpire).toBe(60);
    expect(refused.isBlocked).toBe(true);
    expect(refused.totalHits).toBe(3);
    // The first hit leaves the window 60 s after it was admitted, less the time the calls took.
    expect(Number.isInteger(refused.timeToBlockExpire)).toBe(true);
    expect(refused.timeToBlockExpire).toBeGreaterThanOrEqual(Math.max(1, Math.ceil((60_000 - (t1 - t0)) / 1000)));
    expect(refused.timeToBlockExpire).toBeLessThanOrEqual(60);
  });

  it('does not record refused hits: a client knocking while blocked is admitted once its oldest hit leaves', async () => {
    const redis = await connect(server.url);
    const storage = new QuotaStorage(redis, freshPrefix(), LOCAL);
    const client = freshClient();
    const key = storage.redisKey(client);
    const ttl = 200;

    await storage.increment(client, ttl, 2);
    await storage.increment(client, ttl, 2);
    const [oldest, oldestScore] = await redis.zrange(key, '0', '0', 'WITHSCORES');

    let refusals = 0;
    let record = await storage.increment(client, ttl, 2);
    await until(async () => {
      if (!record.isBlocked) return true;
      refusals++;
      expect(record.totalHits).toBe(2);
      expect(record.timeToBlockExpire).toBe(1);
      expect(await redis.zcard(key)).toBe(2); // refused hits leave no trace
      record = await storage.increment(client, ttl, 2);
      return false;
    }, 'the knocking client is admitted again');

    expect(refusals).toBeGreaterThan(0);
    const log = await redis.zrange(key, '0', '-1', 'WITHSCORES');
    expect(record.totalHits).toBe(log.length / 2);
    expect(log).not.toContain(oldest);
    // Admitted no earlier than the oldest hit's leaving the window.
    expect(Number(log.at(-1)) - Number(oldestScore)).toBeGreaterThanOrEqual(ttl - LUA_ROUNDING_MS);
  });

  it('refuses a client Redis called over quota without asking Redis again, and asks again once a slot frees', async () => {
    const redis = await connect(server.url);
    const storage = new QuotaStorage(redis, freshPrefix(), LOCAL);
    const client = freshClient();
    const key = storage.redisKey(client);
    const decisions: QuotaDecider[] = [];
    storage.quotaEvents.onRefused(({ client: refused, decidedBy }) => refused === client && decisions.push(decidedBy));
    const monitor = await monitorRedis(server.url);
    monitors.push(monitor);
    // Script runs only: MONITOR also lists the commands a script makes, and the test's own reads.
    const quotaCalls = (): string[][] => monitor.commands().filter((args) => /^eval(sha)?$/i.test(args[0] ?? '') && args.includes(key));
    const ttl = 400;

    await storage.increment(client, ttl, 2);
    await storage.increment(client, ttl, 2);
    const [, oldestScore] = await redis.zrange(key, '0', '0', 'WITHSCORES');
    expect((await storage.increment(client, ttl, 2)).isBlocked).toBe(true);
    const knocks = [];
    for (let i = 0; i < 50; i++) knocks.push(await storage.increment(client, ttl, 2));
    await until(() => quotaCalls().length >= 3, 'the monitor saw the first three hits');

    expect(knocks.every((r) => r.isBlocked && r.totalHits === 2 && r.timeToBlockExpire === 1)).toBe(true);
    expect(quotaCalls()).toHaveLength(3);
    expect(decisions).toEqual(['shared store', ...Array<QuotaDecider>(50).fill('replica')]);

    let record = knocks[0]!;
    await waitFor(
      async () => {
        record = await storage.increment(client, ttl, 2);
        return !record.isBlocked;
      },
      { what: 'the knocking client is admitted again', intervalMs: 5 },
    );
    const [, newestScore] = await redis.zrange(key, '-1', '-1', 'WITHSCORES');
    // Admitted once the oldest hit left the window, not later than a knock or two after it.
    const lateMs = Number(newestScore) - (Number(oldestScore) + ttl);
    expect(lateMs).toBeGreaterThanOrEqual(-LUA_ROUNDING_MS);
    expect(lateMs).toBeLessThan(100);
  });

  it('does not hold a refusal counted at a lower limit against a raised quota', async () => {
    const storage = new QuotaStorage(await connect(server.url), freshPrefix(), LOCAL);
    const client = freshClient();
    await storage.increment(client, 60_000, 1);
    expect((await storage.increment(client, 60_000, 1)).isBlocked).toBe(true);
    expect(await storage.increment(client, 60_000, 2)).toMatchObject({ isBlocked: false, totalHits: 2 });
    expect((await storage.increment(client, 60_000, 1)).isBlocked).toBe(true);
  });

  it('keeps different keys independent', async () => {
    const storage = new QuotaStorage(await connect(server.url), freshPrefix(), LOCAL);
    const a = freshClient();
    const b = freshClient();
    await storage.increment(a, 60_000, 1);
    expect((await storage.increment(a, 60_000, 1)).isBlocked).toBe(true);
    expect(await storage.increment(b, 60_000, 1)).toMatchObject({ isBlocked: false, totalHits: 1 });
    expect((await storage.increment(b, 60_000, 1)).isBlocked).toBe(true);
  });

  it('shares the count between replicas (two storages, two connections, one Redis)', async () => {
    const prefix = freshPrefix();
    const one = new QuotaStorage(await connect(server.url), prefix, LOCAL);
    const other = new QuotaStorage(await connect(server.url), prefix, LOCAL);
    const client = freshClient();

    expect((await one.increment(client, 60_000, 3)).totalHits).toBe(1);
    expect((await other.increment(client, 60_000, 3)).totalHits).toBe(2);
    expect((await one.increment(client, 60_000, 3)).totalHits).toBe(3);
    expect(await other.increment(client, 60_000, 3)).toMatchObject({ isBlocked: true, totalHits: 3 });
    expect((await one.increment(client, 60_000, 3)).isBlocked).toBe(true);
  });

  it('keys each client under the prefix with a {hash tag}, expiring a second after the window', async () => {
    const redis = await connect(server.url);
    const prefix = freshPrefix();
    const storage = new QuotaStorage(redis, prefix, LOCAL);
    const client = freshClient();
    await storage.increment(client, 5000, 3);

    const key = storage.redisKey(client);
    expect(key).toBe(`${prefix}:quota:{${client}}`);
    expect(/\{([^}]*)\}/.exec(key)?.[1]).toBe(client);
    expect(await redis.keys(`${prefix}:*`)).toEqual([key]);
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(6000);
  });

  it('falls back to the local share when the script fails on a live connection', async () => {
    const redis = await connect(server.url);
    const storage = new QuotaStorage(redis, freshPrefix(), { policy: 'local', assumedReplicas: 2 });
    const client = freshClient();
    await redis.set(storage.redisKey(client), 'not a sorted set');

    const records = [];
    for (let i = 0; i < 4; i++) records.push(await storage.increment(client, 60_000, 6));
    // floor(6 / 2) = 3 in process.
    expect(records.map((r) => r.isBlocked)).toEqual([false, false, false, true]);
  });

  it('with policy reject, refuses with 503 when the script fails', async () => {
    const redis = await connect(server.url);
    const storage = new QuotaStorage(redis, freshPrefix(), { policy: 'reject', assumedReplicas: 2 });
    const client = freshClient();
    await redis.set(storage.redisKey(client), 'not a sorted set');
    await expect(storage.increment(client, 60_000, 6)).rejects.toBeInstanceOf(SharedStoreUnavailable);
  });
});

describe('RedisThrottlerStorage with Redis down', () => {
  let server: TestRedis;
  let redis: Redis;

  beforeAll(async () => {
    server = await startPrivateRedis();
  });

  async function stopped(): Promise<Redis> {
    redis = clients.gatewayLike(server);
    await until(() => redis.status === 'ready', 'the client is connected');
    await server.stop();
    await until(() => redis.status !== 'ready', 'the client noticed');
    return redis;
  }

  it.each([
    [10, 3, 3],
    [3, 3, 1],
    [2, 3, 1], // less than one per replica: still one
    [7, 1, 7],
  ])('limit %i over %i replicas: admits floor(limit / replicas) = %i in process, at least 1', async (limit, replicas, share) => {
    const down = await stopped();
    const storage = new QuotaStorage(down, 'test', { policy: 'local', assumedReplicas: replicas });
    const client = freshClient();
    const records = [];
    for (let i = 0; i <= share; i++) records.push(await storage.increment(client, 60_000, limit));
    expect(records.slice(0, share).every((r) => !r.isBlocked)).toBe(true);
    expect(records[share]).toMatchObject({ isBlocked: true, totalHits: share });
    expect(records[share]!.timeToBlockExpire).toBeGreaterThanOrEqual(1);
  });

  it('splits the quota over the fleet Redis last counted, once the policy was told it', async () => {
    const down = await stopped();
    const storage = new QuotaStorage(down, 'test', { policy: 'local', assumedReplicas: 6 });
    storage.downPolicy.fleetCounted(2);
    const client = freshClient();
    const records = [];
    for (let i = 0; i < 4; i++) records.push(await storage.increment(client, 60_000, 6));
    // floor(6 / 2) = 3, not floor(6 / 6) = 1.
    expect(records.map((r) => r.isBlocked)).toEqual([false, false, false, true]);
  });

  it('counts the fallback on the in-process storage it was given', async () => {
    const down = await stopped();
    let time = 5000;
    const local = new InProcessThrottlerStorage(() => time);
    const increment = jest.spyOn(local, 'increment');
    const storage = new QuotaStorage(down, 'test', { policy: 'local', assumedReplicas: 2 }, local);
    await storage.increment('c', 1000, 4);
    await storage.increment('c', 1000, 4);
    expect(await storage.increment('c', 1000, 4)).toMatchObject({ isBlocked: true, timeToBlockExpire: 1 });
    expect(increment).toHaveBeenLastCalledWith('c', 1000, 2);
    time += 1000;
    expect((await storage.increment('c', 1000, 4)).isBlocked).toBe(false);
  });

  it('with policy reject, refuses with 503 (Retry-After 1 s)', async () => {
    const down = await stopped();
    const storage = new QuotaStorage(down, 'test', { policy: 'reject', assumedReplicas: 2 });
    const error = await storage.increment(freshClient(), 1000, 4).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SharedStoreUnavailable);
    expect((error as SharedStoreUnavailable).status).toBe(503);
    expect((error as SharedStoreUnavailable).details.retryAfterSeconds).toBe(1);
  });

  it('falls back after the command timeout when Redis hangs', async () => {
    const redis = clients.gatewayLike(server, 200);
    await until(() => redis.status === 'ready', 'the client is connected');
    const storage = new QuotaStorage(redis, 'test', { policy: 'local', assumedReplicas: 2 });
    server.pause();
    const records = [];
    for (let i = 0; i < 3; i++) records.push(await storage.increment('hung-client', 60_000, 4));
    expect(records.map((r) => r.isBlocked)).toEqual([false, false, true]);
  });
});
