import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startPrivateRedis, stopAllRedis, type TestRedis } from '../../test/support/redis-server.js';
import type { ClaimResult, IdempotencyStore, StoredAnswer } from './idempotency-store.js';
import { InProcessIdempotencyStore } from './in-process-idempotency-store.js';
import { RedisIdempotencyStore } from './redis-idempotency-store.js';

let server: TestRedis;
let redis: Redis;
beforeAll(async () => {
  server = await startPrivateRedis();
  redis = new Redis(server.url, { enableOfflineQueue: true, maxRetriesPerRequest: 0 });
  await redis.ping();
});
afterAll(async () => {
  redis?.disconnect();
  await stopAllRedis();
});

const CREATED: StoredAnswer = { kind: 'success', status: 201, body: { roomId: 'r1', attributeSeq: 0, zegoRequestId: 'z1' } };
const EXISTS: StoredAnswer = { kind: 'error', status: 409, message: 'The room already exists', zegoCode: 660300014, zegoRequestId: 'z2' };
const TTL = 60_000;

function claimOf(result: ClaimResult) {
  if (result.kind !== 'started' && result.kind !== 'resumed') throw new Error(`expected a claim, got ${result.kind}`);
  return result.claim;
}

let counter = 0;
const newKey = (): string => `test:idem:{client}:${++counter}`;

describe.each([
  ['in process', (): IdempotencyStore => new InProcessIdempotencyStore()],
  ['Redis', (): IdempotencyStore => new RedisIdempotencyStore(redis)],
])('%s store', (_, makeStore) => {
  let store: IdempotencyStore;
  let key: string;
  beforeEach(() => {
    store = makeStore();
    key = newKey();
  });

  it('lets the first request claim a key, and tells a concurrent one it is in progress', async () => {
    const results = await Promise.all([store.claim(key, 'fp', TTL), store.claim(key, 'fp', TTL)]);
    expect(results.map((r) => r.kind).sort()).toEqual(['in-progress', 'started']);
    const busy = results.find((r) => r.kind === 'in-progress') as Extract<ClaimResult, { kind: 'in-progress' }>;
    expect(busy.msLeft).toBeGreaterThan(TTL - 5_000);
    expect(busy.msLeft).toBeLessThanOrEqual(TTL);
  });

  it('replays a done answer for the same body, and refuses another body', async () => {
    const claim = claimOf(await store.claim(key, 'fp', TTL));
    expect(await claim.finish({ action: 'done', answer: CREATED, ttlMs: TTL })).toBe(true);
    expect(await store.claim(key, 'fp', TTL)).toEqual({ kind: 'done', answer: CREATED });
    expect(await store.claim(key, 'other', TTL)).toEqual({ kind: 'mismatch' });
    // An error answer round-trips too.
    const other = newKey();
    await claimOf(await store.claim(other, 'fp', TTL)).finish({ action: 'done', answer: EXISTS, ttlMs: TTL });
    expect(await store.claim(other, 'fp', TTL)).toEqual({ kind: 'done', answer: EXISTS });
  });

  it('refuses another body while the first is still in progress', async () => {
    claimOf(await store.claim(key, 'fp', TTL));
    expect(await store.claim(key, 'other', TTL)).toEqual({ kind: 'mismatch' });
  });

  it('frees a released key for the next request', async () => {
    const claim = claimOf(await store.claim(key, 'fp', TTL));
    expect(await claim.finish({ action: 'release' })).toBe(true);
    expect((await store.claim(key, 'other body too', TTL)).kind).toBe('started');
  });

  it('resumes an ambiguous key, and a release of the resumed claim keeps it ambiguous', async () => {
    await claimOf(await store.claim(key, 'fp', TTL)).finish({ action: 'ambiguous', ttlMs: TTL });
    expect((await store.claim(key, 'other', TTL)).kind).toBe('mismatch');
    const resumed = await store.claim(key, 'fp', TTL);
    expect(resumed.kind).toBe('resumed');
    expect((await store.claim(key, 'fp', TTL)).kind).toBe('in-progress');
    await claimOf(resumed).finish({ action: 'release' });
    const again = await store.claim(key, 'fp', TTL);
    expect(again.kind).toBe('resumed');
    await claimOf(again).finish({ action: 'done', answer: CREATED, ttlMs: TTL });
    expect(await store.claim(key, 'fp', TTL)).toEqual({ kind: 'done', answer: CREATED });
  });

  it('lets a claim whose holder never finished lapse, and ignores that holder afterwards', async () => {
    const stale = claimOf(await store.claim(key, 'fp', 100));
    await sleep(150);
    const fresh = await store.claim(key, 'other', TTL);
    expect(fresh.kind).toBe('started');
    expect(await stale.finish({ action: 'done', answer: CREATED, ttlMs: TTL })).toBe(false);
    expect((await store.claim(key, 'other', TTL)).kind).toBe('in-progress');
  });

  it('returns a lapsed resumed claim to ambiguous', async () => {
    await claimOf(await store.claim(key, 'fp', TTL)).finish({ action: 'ambiguous', ttlMs: TTL });
    expect((await store.claim(key, 'fp', 100)).kind).toBe('resumed');
    await sleep(150);
    expect((await store.claim(key, 'fp', TTL)).kind).toBe('resumed');
  });

  it('forgets a done answer after its TTL', async () => {
    await claimOf(await store.claim(key, 'fp', TTL)).finish({ action: 'done', answer: CREATED, ttlMs: 100 });
    await sleep(150);
    expect((await store.claim(key, 'other', TTL)).kind).toBe('started');
  });
});

describe('Redis store records', () => {
  it('expire with Redis TTLs: a pending claim within its TTL, a done answer within the answer TTL', async () => {
    const store = new RedisIdempotencyStore(redis);
    const key = newKey();
    const claim = claimOf(await store.claim(key, 'fp', 30_000));
    const pendingTtl = await redis.pttl(key);
    expect(pendingTtl).toBeGreaterThan(25_000);
    expect(pendingTtl).toBeLessThanOrEqual(30_000);
    await claim.finish({ action: 'done', answer: CREATED, ttlMs: 86_400_000 });
    expect(await redis.pttl(key)).toBeGreaterThan(86_000_000);
    expect(await redis.hget(key, 'token')).toBeNull();
  });

  it('refuses to replay a stored answer it cannot parse', async () => {
    const store = new RedisIdempotencyStore(redis);
    const key = newKey();
    await redis.hset(key, 'state', 'done', 'fp', 'fp', 'answer', '{"kind":"nonsense"}');
    await expect(store.claim(key, 'fp', TTL)).rejects.toThrow(/unexpected shape/);
  });
});
