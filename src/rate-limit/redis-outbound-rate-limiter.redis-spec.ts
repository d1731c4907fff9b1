import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { settledState, until } from '../../test/support/async-probes.js';
import { maxCallsInAnyWindow } from '../../test/support/call-windows.js';
import { RedisClients } from '../../test/support/redis-clients.js';
import { startPrivateRedis, startTestRedis, stopAllRedis, type TestRedis } from '../../test/support/redis-server.js';
import { LuaScript } from '../redis/lua-script.js';
import { RedisCallFailed } from '../redis/redis-call-failed.js';
import { OutboundRateLimitRefusal } from './outbound-rate-limiter.js';
import { RedisOutboundRateLimiter, type OutboundBudgetKeys, type SharedSlotRules } from './redis-outbound-rate-limiter.js';
import type { SlotRules } from './slot-schedule.js';

const BIG_MAX_WAIT = 10 * 60_000;
const RESERVE_SLOT = LuaScript.load(new URL('./lua/reserve-outbound-slot.lua', import.meta.url));
/** Slot scores are milliseconds near 1.7e12 with a fractional part: one ulp there is ~2.4e-4 ms. */
const FLOAT_EPSILON_MS = 1e-3;
/** Redis's TIME (wall clock) and performance.now() (monotonic) may disagree by rounding only. */
const CLOCK_SLACK_MS = 1;

// ------------------------------------------------------------------ helpers

const clients = new RedisClients();

/** A key of its own for each test, with the {hash tag} the gateway uses. */
const freshKey = (): string => `test:{outbound:${randomUUID()}}:slots`;

/** The budget whose slot log is `slots`, with its hand-over marker beside it (as RedisKeys names them). */
const budget = (slots: string): OutboundBudgetKeys => ({ slots, handover: `${slots}:handover` });

/** The log as [member, score] pairs, oldest first. */
async function readLog(redis: Redis, key: string): Promise<Array<{ member: string; score: number }>> {
  const flat = await redis.zrange(key, '0', '-1', 'WITHSCORES');
  const entries: Array<{ member: string; score: number }> = [];
  for (let i = 0; i < flat.length; i += 2) entries.push({ member: flat[i]!, score: Number(flat[i + 1]) });
  return entries;
}

function smallestGap(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let smallest = Number.POSITIVE_INFINITY;
  for (let i = 1; i < sorted.length; i++) smallest = Math.min(smallest, sorted[i]! - sorted[i - 1]!);
  return smallest;
}

/** The invariant of lua/reserve-outbound-slot.lua, checked independently on the scores. */
function expectInvariant(scores: readonly number[], rules: SlotRules): void {
  const span = rules.windowMs + rules.safetyMarginMs;
  expect(maxCallsInAnyWindow(scores, span - FLOAT_EPSILON_MS)).toBeLessThanOrEqual(rules.limit);
  expect(smallestGap(scores)).toBeGreaterThanOrEqual(span / rules.limit - FLOAT_EPSILON_MS);
}

/** Keeps this process busy, as a GC pause or a CPU-starved pod would. */
function blockEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

afterEach(() => clients.closeAll());
afterAll(stopAllRedis);

// ------------------------------------------------------------------ tests

describe('the invariant check used below', () => {
  it('catches an over-full window and a too-small gap', () => {
    expect(maxCallsInAnyWindow([0, 10, 109.99], 110)).toBe(3);
    expect(maxCallsInAnyWindow([0, 10, 110], 110)).toBe(2);
    expect(smallestGap([0, 30, 51])).toBe(21);
  });
});

describe('RedisOutboundRateLimiter', () => {
  let server: TestRedis;

  beforeAll(async () => {
    server = await startTestRedis();
  });

  describe('several replicas reserving at once', () => {
    it('grants all 80 concurrent reservations from 4 connections and keeps the invariant', async () => {
      // Slots 220 ms apart: the burst is reserved long before its slots come, nothing is pruned.
      const rules: SlotRules = { limit: 5, windowMs: 1000, safetyMarginMs: 100 };
      const key = freshKey();
      const replicas = Array.from(
        { length: 4 },
        () => new RedisOutboundRateLimiter(clients.plain(server.url), budget(key), rules),
      );

      const reservations = await Promise.all(
        replicas.flatMap((replica) => Array.from({ length: 20 }, () => replica.reserve(BIG_MAX_WAIT))),
      );

      const log = await readLog(clients.plain(server.url), key);
      expect(log).toHaveLength(80);
      expect(new Set(log.map((e) => e.member))).toEqual(new Set(reservations.map((r) => r.id)));
      expectInvariant(
        log.map((e) => e.score),
        rules,
      );
      // Slots are handed out in increasing order: exactly one reservation was told to go at once.
      expect(reservations.filter((r) => r.waitMs === 0).length).toBeLessThanOrEqual(1);
    });

    it('keeps the invariant across waves of real acquisitions, while old slots are pruned', async () => {
      const rules: SlotRules = { limit: 3, windowMs: 60, safetyMarginMs: 6 };
      const key = freshKey();
      const observer = clients.plain(server.url);
      const replicas = Array.from(
        { length: 4 },
        () => new RedisOutboundRateLimiter(clients.plain(server.url), budget(key), rules),
      );
      const seen = new Map<string, number>();
      const snapshot = async () => {
        for (const { member, score } of await readLog(observer, key)) seen.set(member, score);
      };

      for (let wave = 0; wave < 2; wave++) {
        // Nothing is pruned between the reservations and the snapshot: only the script prunes.
        await Promise.all(
          replicas.flatMap((replica) =>
            Array.from({ length: 5 }, () => replica.acquire({ maxWaitMs: BIG_MAX_WAIT })),
          ),
        );
        await snapshot();
      }

      expect(seen.size).toBe(40);
      expectInvariant([...seen.values()], rules);
      // The second wave did prune slots of the first that could no longer matter.
      expect(await observer.zcard(key)).toBeLessThan(40);
    });
  });

  describe('waits', () => {
    it('measures each wait from Redis time: 0, then one spacing, then the window, minus the time gone by', async () => {
      const rules: SlotRules = { limit: 2, windowMs: 10_000, safetyMarginMs: 0 };
      const key = freshKey();
      const redis = clients.plain(server.url);
      await redis.ping();
      const limiter = new RedisOutboundRateLimiter(redis, budget(key), rules);

      // Redis read its clock for call n somewhere between t[n-1] and t[n].
      const t0 = performance.now();
      const first = await limiter.reserve(BIG_MAX_WAIT);
      const t1 = performance.now();
      const second = await limiter.reserve(BIG_MAX_WAIT);
      const t2 = performance.now();
      const third = await limiter.reserve(BIG_MAX_WAIT);
      const t3 = performance.now();

      expect(first.waitMs).toBe(0);
      expect(second.waitMs).toBeGreaterThanOrEqual(5000 - (t2 - t0) - CLOCK_SLACK_MS);
      expect(second.waitMs).toBeLessThanOrEqual(5000 + CLOCK_SLACK_MS);
      expect(third.waitMs).toBeGreaterThanOrEqual(10_000 - (t3 - t0) - CLOCK_SLACK_MS);
      expect(third.waitMs).toBeLessThanOrEqual(10_000 - (t2 - t1) + CLOCK_SLACK_MS);

      // The slots themselves: one spacing, then one window (the anchor two places back) apart.
      const log = await readLog(redis, key);
      expect(log.map((e) => e.member)).toEqual([first.id, second.id, third.id]);
      expect(log[1]!.score - log[0]!.score).toBeCloseTo(5000, 2);
      expect(log[2]!.score - log[0]!.score).toBeCloseTo(10_000, 2);
    });

    it('gives the log an expiry that outlives its newest slot by one span', async () => {
      const rules: SlotRules = { limit: 2, windowMs: 10_000, safetyMarginMs: 500 };
      const key = freshKey();
      const redis = clients.plain(server.url);
      const limiter = new RedisOutboundRateLimiter(redis, budget(key), rules);
      await limiter.reserve(BIG_MAX_WAIT);
      const second = await limiter.reserve(BIG_MAX_WAIT);
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(second.waitMs + 10_500);
      expect(ttl).toBeLessThanOrEqual(Math.ceil(second.waitMs + 10_500) + 1000);
    });
  });

  describe('a slot further away than the caller may wait', () => {
    it('is refused with 429 and Retry-After, nothing is written, and the next caller gets that slot', async () => {
      const rules: SlotRules = { limit: 1, windowMs: 10_000, safetyMarginMs: 0 };
      const key = freshKey();
      const redis = clients.plain(server.url);
      await redis.ping();
      const limiter = new RedisOutboundRateLimiter(redis, budget(key), rules);

      const t0 = performance.now();
      const first = await limiter.reserve(BIG_MAX_WAIT);
      const refusal = await limiter.reserve(1000).catch((error: unknown) => error);
      const t2 = performance.now();

      expect(refusal).toBeInstanceOf(OutboundRateLimitRefusal);
      const { waitMs, status, details } = refusal as OutboundRateLimitRefusal;
      expect(status).toBe(429);
      expect(waitMs).toBeGreaterThanOrEqual(10_000 - (t2 - t0) - CLOCK_SLACK_MS);
      expect(waitMs).toBeLessThanOrEqual(10_000 + CLOCK_SLACK_MS);
      expect(details.retryAfterSeconds).toBe(Math.ceil(waitMs / 1000));
      expect(await redis.zcard(key)).toBe(1);

      // Refusals take nothing, however many: the next caller is offered the very same slot.
      await expect(limiter.reserve(0)).rejects.toBeInstanceOf(OutboundRateLimitRefusal);
      const next = await new RedisOutboundRateLimiter(clients.plain(server.url), budget(key), rules).reserve(BIG_MAX_WAIT);
      const log = await readLog(redis, key);
      expect(log.map((e) => e.member)).toEqual([first.id, next.id]);
      expect(log[1]!.score - log[0]!.score).toBeCloseTo(10_000, 2);
    });

    it('accepts a slot exactly at hand with a maximum wait of 0', async () => {
      const limiter = new RedisOutboundRateLimiter(clients.plain(server.url), budget(freshKey()), {
        limit: 1,
        windowMs: 10_000,
        safetyMarginMs: 0,
      });
      await expect(limiter.reserve(0)).resolves.toMatchObject({ waitMs: 0 });
    });
  });

  describe('aborts', () => {
    it('an abort during the wait takes the slot out of the log and rejects with the abort', async () => {
      const rules: SlotRules = { limit: 1, windowMs: 60_000, safetyMarginMs: 0 };
      const key = freshKey();
      const redis = clients.plain(server.url);
      const limiter = new RedisOutboundRateLimiter(redis, budget(key), rules);
      await limiter.acquire({ maxWaitMs: BIG_MAX_WAIT });
      const [firstSlot] = await readLog(redis, key);

      const controller = new AbortController();
      const waiting = limiter.acquire({ maxWaitMs: BIG_MAX_WAIT, signal: controller.signal });
      await until(async () => (await redis.zcard(key)) === 2, 'the second slot is reserved');
      expect(await settledState(waiting)).toBe('pending');

      const reason = new Error('the caller went away');
      controller.abort(reason);
      // The default (node timers) wait rejects with an AbortError whose cause is the reason.
      const error = await waiting.catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'AbortError' });
      expect((error as Error).cause).toBe(reason);

      await until(async () => (await redis.zcard(key)) === 1, 'the aborted slot is removed');
      expect(await readLog(redis, key)).toEqual([firstSlot]);
      // The slot is free again: the next caller is offered it, not the one after it.
      const refusal = (await limiter.reserve(0).catch((e: unknown) => e)) as OutboundRateLimitRefusal;
      expect(refusal).toBeInstanceOf(OutboundRateLimitRefusal);
      expect(refusal.waitMs).toBeLessThanOrEqual(60_000);
    });

    it('with an injected wait, rejects with exactly what the wait rejected with', async () => {
      const key = freshKey();
      const redis = clients.plain(server.url);
      const failure = new Error('wait failed');
      const limiter = new RedisOutboundRateLimiter(redis, budget(key),
        { limit: 1, windowMs: 60_000, safetyMarginMs: 0 },
        undefined,
        () => Promise.reject(failure),
      );
      await limiter.acquire({ maxWaitMs: BIG_MAX_WAIT });
      await expect(limiter.acquire({ maxWaitMs: BIG_MAX_WAIT })).rejects.toBe(failure);
      await until(async () => (await redis.zcard(key)) === 1, 'the slot is handed back');
    });

    it('an already aborted signal rejects with its reason and writes nothing', async () => {
      const key = freshKey();
      const redis = clients.plain(server.url);
      const limiter = new RedisOutboundRateLimiter(redis, budget(key), { limit: 5, windowMs: 1000, safetyMarginMs: 0 });
      const evalsha = jest.spyOn(redis, 'evalsha');
      const reason = new Error('gone before asking');

      await expect(limiter.acquire({ maxWaitMs: BIG_MAX_WAIT, signal: AbortSignal.abort(reason) })).rejects.toBe(
        reason,
      );
      expect(evalsha).not.toHaveBeenCalled();
      expect(await redis.exists(key)).toBe(0);
    });
  });

  describe('carried-over releases', () => {
    it('are written first and count: the new slot comes after them', async () => {
      const rules: SlotRules = { limit: 2, windowMs: 60_000, safetyMarginMs: 0 };
      const key = freshKey();
      const redis = clients.plain(server.url);
      const limiter = new RedisOutboundRateLimiter(redis, budget(key), rules);

      const reservation = await limiter.reserve(BIG_MAX_WAIT, [-300, -100]);

      // Both carried releases are in the window: the new slot waits for the older to leave it.
      expect(reservation.waitMs).toBeCloseTo(60_000 - 300, 2);
      const log = await readLog(redis, key);
      expect(log.map((e) => e.member)).toEqual([
        `${reservation.id}:carried:1`,
        `${reservation.id}:carried:2`,
        reservation.id,
      ]);
      expect(log[1]!.score - log[0]!.score).toBeCloseTo(200, 2);
      expect(log[2]!.score - log[0]!.score).toBeCloseTo(60_000, 2);
    });

    it('are written even when the slot is refused', async () => {
      const key = freshKey();
      const redis = clients.plain(server.url);
      const limiter = new RedisOutboundRateLimiter(redis, budget(key), { limit: 1, windowMs: 60_000, safetyMarginMs: 0 });

      const refusal = (await limiter.reserve(0, [-300]).catch((e: unknown) => e)) as OutboundRateLimitRefusal;

      expect(refusal).toBeInstanceOf(OutboundRateLimitRefusal);
      expect(refusal.waitMs).toBeCloseTo(60_000 - 300, 2);
      const log = await readLog(redis, key);
      expect(log).toHaveLength(1);
      expect(log[0]!.member).toMatch(/:carried:1$/);
    });

    it('a refused reservation that created the log with carried releases still lets the key expire', async () => {
      const key = freshKey();
      const redis = clients.plain(server.url);
      const limiter = new RedisOutboundRateLimiter(redis, budget(key), { limit: 1, windowMs: 60_000, safetyMarginMs: 0 });
      await expect(limiter.reserve(0, [-300])).rejects.toBeInstanceOf(OutboundRateLimitRefusal);
      expect(await redis.pttl(key)).toBeGreaterThan(0);
    });
  });

  describe('slots on this process\'s clock', () => {
    it('places a slot by when Redis ran the script, not by when a late answer was read', async () => {
      const rules: SlotRules = { limit: 1, windowMs: 10_000, safetyMarginMs: 0 };
      const redis = clients.plain(server.url);
      await redis.ping();
      const limiter = new RedisOutboundRateLimiter(redis, budget(freshKey()), rules);
      // One quick round trip tells the limiter where Redis's clock stands against ours.
      await limiter.reserve(BIG_MAX_WAIT);

      const sentAt = performance.now();
      const pending = limiter.reserve(BIG_MAX_WAIT);
      // The command is on the wire; the answer now waits while this process is busy.
      blockEventLoop(150);
      const second = await pending;

      const ranAt = second.slotAt - second.waitMs;
      expect(ranAt).toBeGreaterThanOrEqual(sentAt - CLOCK_SLACK_MS);
      // Reading the slot from the moment the answer was handled would put it 150 ms late.
      expect(ranAt).toBeLessThan(sentAt + 75);
      expect(second.roundTripMs).toBeGreaterThanOrEqual(150);
    });

    it('leaves the lead a caller asks for before its slot (ARGV[5] of the script)', async () => {
      const redis = clients.plain(server.url);
      const key = freshKey();
      const reply = (await RESERVE_SLOT.run(
        redis,
        [key, `${key}:handover`],
        [5, 1000, 0, BIG_MAX_WAIT, 250, 'with-lead', '', 5, 0],
      )) as string[];
      expect(Number(reply[0])).toBe(1);
      expect(Number(reply[1])).toBe(250);
      const [entry] = await readLog(redis, key);
      expect(entry!.score - Number(reply[3])).toBeCloseTo(250, 2);
    });
  });

  describe('a caller that wakes too late for its slot', () => {
    // Tolerance: half the 40 ms margin. A wait that oversleeps by 100 ms is far beyond it.
    const rules: SlotRules = { limit: 1, windowMs: 300, safetyMarginMs: 40 };

    /** Node's timer, oversleeping by `extraMs` the first `times` times (a stalled event loop). */
    function oversleeping(extraMs: number, times: number) {
      let left = times;
      return (ms: number, signal?: AbortSignal) => sleep(ms + (left-- > 0 ? extraMs : 0), undefined, { signal });
    }

    it('trades the slot for a new one instead of crowding the next window', async () => {
      const key = freshKey();
      const redis = clients.plain(server.url);
      await redis.ping();
      const limiter = new RedisOutboundRateLimiter(redis, budget(key), rules, undefined, oversleeping(100, 1));
      await limiter.acquire({ maxWaitMs: BIG_MAX_WAIT });

      const late = await limiter.reserve(BIG_MAX_WAIT);
      expect(late.waitMs).toBeGreaterThan(0);
      await limiter.waitFor(late);
      const releasedAt = performance.now();

      expect(limiter.lateSlots()).toBeGreaterThanOrEqual(1);
      expect(releasedAt - late.slotAt).toBeGreaterThanOrEqual(100);
      // The late slot left the log; the slot it went out in replaced it.
      const members = (await readLog(redis, key)).map((e) => e.member);
      expect(members).not.toContain(late.id);
      expect(members).toHaveLength(1);
    });

    it('is refused, and frees its slot, when no new slot fits in the wait it had left', async () => {
      const key = freshKey();
      const redis = clients.plain(server.url);
      await redis.ping();
      const slow = { limit: 1, windowMs: 10_000, safetyMarginMs: 40 };
      let clock = 0;
      // The wait "returns" 500 ms after the slot: the injected clock jumps there.
      const lateWait = async (ms: number) => {
        clock += ms + 500;
      };
      const limiter = new RedisOutboundRateLimiter(redis, budget(key), slow, () => clock, lateWait);
      const otherReplica = new RedisOutboundRateLimiter(clients.plain(server.url), budget(key), slow);
      const first = await otherReplica.reserve(BIG_MAX_WAIT);

      const late = await limiter.reserve(10_200);
      const refusal = await limiter.waitFor(late).catch((e: unknown) => e);

      expect(refusal).toBeInstanceOf(OutboundRateLimitRefusal);
      expect(limiter.lateSlots()).toBe(1);
      expect((await readLog(redis, key)).map((e) => e.member)).toEqual([first.id]);
    });
  });

  describe('the hand-over after Redis was unreachable', () => {
    // Four per second for the fleet; while a hand-over lasts, two (room for the others' shares).
    const rules: SharedSlotRules = {
      limit: 4,
      windowMs: 1000,
      safetyMarginMs: 0,
      handover: { limit: 2, durationMs: 60_000 },
    };

    it('is started by a returning replica, and every replica then places at most the hand-over limit', async () => {
      const key = freshKey();
      const look = clients.plain(server.url);
      const returning = new RedisOutboundRateLimiter(clients.plain(server.url), budget(key), rules);
      const other = new RedisOutboundRateLimiter(clients.plain(server.url), budget(key), rules);

      await returning.reserve(BIG_MAX_WAIT, [], true);
      const ttl = await look.pttl(`${key}:handover`);
      expect(ttl).toBeGreaterThan(59_000);
      expect(ttl).toBeLessThanOrEqual(60_000);
      await Promise.all([
        ...Array.from({ length: 3 }, () => returning.reserve(BIG_MAX_WAIT)),
        ...Array.from({ length: 4 }, () => other.reserve(BIG_MAX_WAIT)),
      ]);

      const scores = (await readLog(look, key)).map((e) => e.score);
      expect(scores).toHaveLength(8);
      expectInvariant(scores, { limit: 2, windowMs: 1000, safetyMarginMs: 0 });
    });

    it('ends by itself, and the full limit applies again', async () => {
      const key = freshKey();
      const look = clients.plain(server.url);
      const limiter = new RedisOutboundRateLimiter(clients.plain(server.url), budget(key), {
        ...rules,
        handover: { limit: 2, durationMs: 50 },
      });
      await limiter.reserve(BIG_MAX_WAIT, [], true);
      await until(async () => (await look.exists(`${key}:handover`)) === 0, 'the hand-over ended');

      await Promise.all(Array.from({ length: 3 }, () => limiter.reserve(BIG_MAX_WAIT)));
      const scores = (await readLog(look, key)).map((e) => e.score);
      // One spacing (1000 / 4 ms) apart now, not 1000 / 2.
      expect(smallestGap(scores.slice(1))).toBeCloseTo(250, 2);
      expectInvariant(scores, rules);
    });

    it('slows only the slots before its end: a queue reserved during it is back to full speed after', async () => {
      const key = freshKey();
      const look = clients.plain(server.url);
      const limiter = new RedisOutboundRateLimiter(clients.plain(server.url), budget(key), {
        ...rules,
        handover: { limit: 2, durationMs: 800 },
      });
      await limiter.reserve(BIG_MAX_WAIT, [], true);
      const until = Number(await look.get(`${key}:handover`));
      for (let i = 0; i < 5; i++) await limiter.reserve(BIG_MAX_WAIT);

      const scores = (await readLog(look, key)).map((e) => e.score);
      const during = scores.filter((score) => score < until);
      const after = scores.filter((score) => score >= until);
      expectInvariant(during, { limit: 2, windowMs: 1000, safetyMarginMs: 0 });
      expect(after.length).toBeGreaterThanOrEqual(3);
      // The first slot after it starts at its end at the latest; then one spacing (1000 / 4 ms) apart.
      expect(after[0]! - until).toBeLessThanOrEqual(FLOAT_EPSILON_MS);
      expect(smallestGap(after)).toBeCloseTo(250, 2);
      expectInvariant(scores, rules);
    });

    it('is not started by an ordinary reservation', async () => {
      const key = freshKey();
      const limiter = new RedisOutboundRateLimiter(clients.plain(server.url), budget(key), rules);
      await limiter.reserve(BIG_MAX_WAIT, [-100]);
      expect(await clients.plain(server.url).exists(`${key}:handover`)).toBe(0);
    });
  });

  describe('lastKnownSlot', () => {
    it('follows the newest slot Redis reported, on the injected clock', async () => {
      const rules: SlotRules = { limit: 2, windowMs: 10_000, safetyMarginMs: 0 };
      const key = freshKey();
      let clock = 1000;
      const limiter = new RedisOutboundRateLimiter(clients.plain(server.url), budget(key), rules, () => clock);
      const otherReplica = new RedisOutboundRateLimiter(clients.plain(server.url), budget(key), rules);

      expect(limiter.lastKnownSlot()).toBeUndefined();

      await limiter.reserve(BIG_MAX_WAIT);
      expect(limiter.lastKnownSlot()).toBe(1000);

      clock = 2000;
      const second = await limiter.reserve(BIG_MAX_WAIT);
      expect(limiter.lastKnownSlot()).toBe(2000 + second.waitMs);

      // Another replica's slot is unknown here until Redis tells us...
      await otherReplica.reserve(BIG_MAX_WAIT);
      expect(limiter.lastKnownSlot()).toBe(2000 + second.waitMs);

      // ...which a refusal does too: the offered slot is one spacing after the newest one.
      clock = 3000;
      const refusal = (await limiter.reserve(0).catch((e: unknown) => e)) as OutboundRateLimitRefusal;
      expect(refusal).toBeInstanceOf(OutboundRateLimitRefusal);
      expect(limiter.lastKnownSlot()!).toBeCloseTo(3000 + refusal.waitMs - 5000, 2);
      expect(limiter.lastKnownSlot()!).toBeGreaterThan(2000 + second.waitMs);
    });
  });

  it('reports an answer of an unexpected shape as RedisCallFailed', async () => {
    const fake = { evalsha: async () => [1, 'soon'] } as unknown as Redis;
    const limiter = new RedisOutboundRateLimiter(fake, budget('k'), { limit: 1, windowMs: 1000, safetyMarginMs: 0 });
    await expect(limiter.reserve(BIG_MAX_WAIT)).rejects.toBeInstanceOf(RedisCallFailed);
    expect(limiter.lastKnownSlot()).toBeUndefined();
  });
});

describe('RedisOutboundRateLimiter when Redis does not answer', () => {
  const rules: SlotRules = { limit: 5, windowMs: 1000, safetyMarginMs: 0 };

  it('fails at once with RedisCallFailed when the server is down (no offline queue)', async () => {
    const server = await startPrivateRedis();
    const redis = clients.gatewayLike(server);
    await until(() => redis.status === 'ready', 'the client is connected');
    const limiter = new RedisOutboundRateLimiter(redis, budget(freshKey()), rules);
    await limiter.reserve(BIG_MAX_WAIT);

    await server.stop();
    try {
      await until(() => redis.status !== 'ready', 'the client noticed');

      const reservation = limiter.reserve(BIG_MAX_WAIT);
      // Settled before any timer could fire: nothing waited for a reconnect or a timeout.
      expect(await settledState(reservation)).toBe('rejected');
      const error = await reservation.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisCallFailed);
      expect((error as RedisCallFailed).message).toMatch(/enableOfflineQueue/);
      expect(((error as RedisCallFailed).cause as Error).message).toMatch(/enableOfflineQueue/);

      const acquisition = limiter.acquire({ maxWaitMs: BIG_MAX_WAIT });
      expect(await settledState(acquisition)).toBe('rejected');
      await expect(acquisition).rejects.toBeInstanceOf(RedisCallFailed);
    } finally {
      // A client left reconnecting holds a closed socket, and disconnect() would arm ioredis's
      // 2 s destroy timer on it: bring the server back so the client can quit cleanly.
      await server.restart();
      await until(() => redis.status === 'ready', 'the client reconnected');
    }
  });

  it('fails with RedisCallFailed after the command timeout when the server hangs', async () => {
    const server = await startPrivateRedis();
    const redis = clients.gatewayLike(server, 200);
    await until(() => redis.status === 'ready', 'the client is connected');
    const limiter = new RedisOutboundRateLimiter(redis, budget(freshKey()), rules);

    server.pause();
    try {
      const error = await limiter.reserve(BIG_MAX_WAIT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisCallFailed);
      expect(((error as RedisCallFailed).cause as Error).message).toMatch(/timed out/i);
      expect(limiter.lastKnownSlot()).toBeUndefined();
    } finally {
      server.resume();
    }
  });
});
