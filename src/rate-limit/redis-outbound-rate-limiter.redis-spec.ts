import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { settledState, until } from '../../test/support/async-probes.js';
import { maxCallsInAnyWindow } from '../../test/support/call-windows.js';
import { RedisClients } from '../../test/support/redis-clients.js';
import { startPrivateRedis, startTestRedis, stopAllRedis, type TestRedis } from '../../test/support/redis-server.js';
import { RedisCallFailed } from '../redis/redis-call-failed.js';
import { RedisKeys, type OutboundBudgetKeys } from '../redis/redis-keys.js';
import { OutboundRateLimitRefusal } from './outbound-rate-limiter.js';
import type { Priority } from './rate-limit.settings.js';
import { RedisOutboundRateLimiter, SchedulerSuspended, type SchedulerRules } from './redis-outbound-rate-limiter.js';
import type { SlotWait } from './slot-wait.js';

/** Slot scores are milliseconds near 1.8e12 with a fractional part: one ulp there is ~2.4e-4 ms. */
const FLOAT_EPSILON_MS = 1e-3;

/** A small budget that turns over quickly: 10 calls per 200 ms (+20 ms margin), 22 ms apart. */
const RULES: SchedulerRules = {
  limit: 10,
  windowMs: 200,
  safetyMarginMs: 20,
  horizonMs: 60,
  slowRoundTripMs: 75,
  leaseMs: 400,
  memoryMs: 3000,
  batchMinShare: 0.1,
  weightOf: () => 1,
};
const SPAN = RULES.windowMs + RULES.safetyMarginMs;
const SPACING = SPAN / RULES.limit;

const clients = new RedisClients();
let server: TestRedis;

/** A budget of its own for each test, named as the gateway names them. */
const freshBudget = (): OutboundBudgetKeys => new RedisKeys(`test-${randomUUID().slice(0, 8)}`).outboundBudget(42);

/** One replica of the fleet on a connection of its own. */
function replica(budget: OutboundBudgetKeys, rules: SchedulerRules = RULES, id = `replica-${randomUUID().slice(0, 6)}`) {
  return new RedisOutboundRateLimiter(clients.plain(server.url), budget, rules, id);
}

async function slotScores(budget: OutboundBudgetKeys): Promise<number[]> {
  const flat = await clients.plain(server.url).zrange(budget.slots, '0', '-1', 'WITHSCORES');
  return flat.filter((_, i) => i % 2 === 1).map(Number);
}

/**
 * Follows a budget's slot log while callers run, keeping every slot that was used: the log trims
 * slots older than a span, so it is sampled; a slot that leaves the log before it is a span old
 * was given back or traded (its caller woke late) and never went out, so it is dropped.
 */
function followSlotLog(budget: OutboundBudgetKeys): { stop(): Promise<number[]> } {
  const used = new Map<string, number>();
  const sample = async (): Promise<void> => {
    const answers = await clients.plain(server.url).multi().time().zrange(budget.slots, '0', '-1', 'WITHSCORES').exec();
    const [seconds, micros] = answers![0]![1] as [string, string];
    const redisNow = Number(seconds) * 1000 + Number(micros) / 1000;
    const flat = answers![1]![1] as string[];
    const present = new Map<string, number>();
    for (let i = 0; i < flat.length; i += 2) present.set(flat[i]!, Number(flat[i + 1]));
    for (const [member, score] of used) {
      if (!present.has(member) && score > redisNow - SPAN) used.delete(member);
    }
    for (const [member, score] of present) used.set(member, score);
  };
  let sampling = Promise.resolve();
  const sampler = setInterval(() => {
    sampling = sampling.then(sample);
  }, 25);
  return {
    async stop() {
      clearInterval(sampler);
      await sampling;
      await sample();
      return [...used.values()];
    },
  };
}

function smallestGap(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let smallest = Number.POSITIVE_INFINITY;
  for (let i = 1; i < sorted.length; i++) smallest = Math.min(smallest, sorted[i]! - sorted[i - 1]!);
  return smallest;
}

/** The script's invariant, checked independently on slot times (limit per span, spacing apart). */
function expectInvariant(times: readonly number[], limit = RULES.limit): void {
  expect(maxCallsInAnyWindow(times, SPAN - FLOAT_EPSILON_MS)).toBeLessThanOrEqual(limit);
  expect(smallestGap(times)).toBeGreaterThanOrEqual(SPAN / limit - FLOAT_EPSILON_MS);
}

/**
 * Callers that each keep one request in flight until `stopAt`, recording when each was let go
 * (local clock) and how long it waited; refused callers ask again at once.
 */
async function flood(
  limiter: RedisOutboundRateLimiter,
  { client, callers, stopAt, priority = 'interactive' }: { client: string; callers: number; stopAt: number; priority?: Priority },
): Promise<{ granted: number[]; refused: number }> {
  const granted: number[] = [];
  let refused = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < stopAt) {
        try {
          await limiter.acquire({ maxWaitMs: 2000, client, priority });
          // The requests still in flight at the end are not part of the competition.
          if (performance.now() < stopAt) granted.push(performance.now());
        } catch (error) {
          if (!(error instanceof OutboundRateLimitRefusal)) throw error;
          refused++;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    }),
  );
  return { granted, refused };
}

/** What one script run was asked (the request's JSON) and when it was sent (local clock). */
interface SentRun {
  sentAt: number;
  /** Set once the answer came back. */
  answered?: true;
  request: { rules: Record<string, number>; ticket?: { maxWaitMs: number; front: boolean; replacing: string }; leaving?: boolean };
}

/** While `closed` is set, the answers of script runs that come back are held until it resolves. */
interface Gate {
  closed?: Promise<void>;
}

/** A client that records every script run (EVALSHA, or EVAL after NOSCRIPT) before sending it on. */
function watched(redis: Redis, runs: SentRun[], gate: Gate = {}): Redis {
  return new Proxy(redis, {
    get(target, property) {
      if (property === 'evalsha' || property === 'eval') {
        const send = target[property] as (...args: unknown[]) => Promise<unknown>;
        return async (...args: unknown[]) => {
          const run: SentRun = { sentAt: performance.now(), request: JSON.parse(String(args[args.length - 1])) as SentRun['request'] };
          // A NOSCRIPT retry is the same run: recorded once.
          if (property === 'evalsha') runs.push(run);
          const answer = await send.apply(target, args);
          run.answered = true;
          if (gate.closed) await gate.closed;
          return answer;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * A wait that wakes `oversleepMs` after the asked time and does not hear its caller's signal: a
 * stalled event loop (or a descheduled pod) wakes every waiting timer late at once. `onWait` runs
 * as each wait starts.
 */
function oversleeping(oversleepMs: number, onWait: () => void = () => undefined): SlotWait {
  return async (ms) => {
    onWait();
    await new Promise((resolve) => setTimeout(resolve, ms + oversleepMs));
  };
}

/** Resolves with what the promise settles to, or 'pending' after `ms` (a hang fails a test, not the run). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

beforeAll(async () => {
  server = await startTestRedis();
});
afterEach(() => clients.closeAll());
afterAll(stopAllRedis);

describe('RedisOutboundRateLimiter', () => {
  it('gives a caller alone its slot in the one round trip, and leaves nothing queued', async () => {
    const budget = freshBudget();
    const limiter = replica(budget);
    const answer = await limiter.request({ client: 'solo', priority: 'interactive', giveUpAt: performance.now() + 1000 });
    expect(answer).not.toBeInstanceOf(OutboundRateLimitRefusal);
    const look = clients.plain(server.url);
    expect(await look.zcard(budget.slots)).toBe(1);
    expect(await look.zcard(budget.interactiveQueue)).toBe(0);
    expect(await look.hlen(budget.granted)).toBe(0);
  });

  it('grants 60 callers of 3 replicas within the invariant, none refused, nothing left behind', async () => {
    const budget = freshBudget();
    const replicas = [replica(budget), replica(budget), replica(budget)];
    const look = clients.plain(server.url);
    const log = followSlotLog(budget);
    let used: number[];
    try {
      await Promise.all(
        replicas.flatMap((limiter, r) =>
          Array.from({ length: 20 }, () => limiter.acquire({ maxWaitMs: 10_000, client: `team-${r}` })),
        ),
      );
    } finally {
      used = await log.stop();
    }
    expect(used).toHaveLength(60);
    expectInvariant(used);
    expect(await look.zcard(budget.interactiveQueue)).toBe(0);
    expect(await look.hlen(budget.tickets)).toBe(0);
  });

  it('serves a light client promptly while another floods, across replicas', async () => {
    const budget = freshBudget();
    const flooded = replica(budget);
    const other = replica(budget);
    const stopAt = performance.now() + 1500;
    const flooding = flood(flooded, { client: 'flooder', callers: 30, stopAt });
    const waits: number[] = [];
    while (performance.now() < stopAt - 200) {
      const askedAt = performance.now();
      await other.acquire({ maxWaitMs: 2000, client: 'light' });
      waits.push(performance.now() - askedAt);
      await new Promise((resolve) => setTimeout(resolve, 5 * SPACING));
    }
    const { granted } = await flooding;
    expect(waits.length).toBeGreaterThan(5);
    // Never behind the flooder's queue (30 callers: over 600 ms deep): a horizon and a few slots.
    expect(Math.max(...waits)).toBeLessThan(RULES.horizonMs + 6 * SPACING);
    expect(granted.length).toBeGreaterThan(20);
  });

  it('shares the budget 3:1 between two flooding clients weighted 3 and 1', async () => {
    const budget = freshBudget();
    const rules = { ...RULES, weightOf: (client: string) => (client === 'heavy' ? 3 : 1) };
    const stopAt = performance.now() + 2000;
    const [heavy, light] = await Promise.all([
      flood(replica(budget, rules), { client: 'heavy', callers: 20, stopAt }),
      flood(replica(budget, rules), { client: 'light', callers: 20, stopAt }),
    ]);
    const ratio = heavy.granted.length / light.granted.length;
    expect(ratio).toBeGreaterThan(3 * 0.8);
    expect(ratio).toBeLessThan(3 * 1.2);
  });

  it('charges a client nothing for callers that gave up waiting: its share stays whole', async () => {
    const budget = freshBudget();
    const stopAt = performance.now() + 2000;
    const giveUps = { count: 0 };
    // Callers of the same client that hang up 20 ms into a wait far longer than that.
    const quitting = async (limiter: RedisOutboundRateLimiter): Promise<void> => {
      while (performance.now() < stopAt) {
        const granted = await limiter.acquire({ maxWaitMs: 2000, client: 'patient', signal: AbortSignal.timeout(20) }).then(
          () => true,
          () => false,
        );
        if (!granted) giveUps.count++;
      }
    };
    const patientReplica = replica(budget);
    const [steady, patient] = await Promise.all([
      flood(replica(budget), { client: 'steady', callers: 20, stopAt }),
      flood(patientReplica, { client: 'patient', callers: 20, stopAt }),
      ...Array.from({ length: 10 }, () => quitting(patientReplica)),
    ]);
    expect(giveUps.count).toBeGreaterThan(100);
    const ratio = patient.granted.length / steady.granted.length;
    // About 1.07 on a quiet machine; 0.5 if abandoned tickets stayed in line until their deadline.
    // A give-up that crosses its grant on the way is charged (the slot was the caller's), and a
    // starved test process, running a thousand give-ups, makes such crossings commoner (0.78).
    expect(ratio).toBeGreaterThan(0.7);
    expect(ratio).toBeLessThan(1.25);
  });

  it('gives batch its minimum share beside an interactive flood, and everything when alone', async () => {
    const budget = freshBudget();
    const rules = { ...RULES, batchMinShare: 0.2 };
    const stopAt = performance.now() + 2000;
    const [interactive, batch] = await Promise.all([
      flood(replica(budget, rules), { client: 'people', callers: 20, stopAt }),
      flood(replica(budget, rules), { client: 'nightly', callers: 20, stopAt, priority: 'batch' }),
    ]);
    const share = batch.granted.length / (batch.granted.length + interactive.granted.length);
    expect(share).toBeGreaterThan(0.2 * 0.75);
    expect(share).toBeLessThan(0.2 * 1.5);

    const alone = await flood(replica(freshBudget(), rules), {
      client: 'nightly',
      callers: 10,
      stopAt: performance.now() + 500,
      priority: 'batch',
    });
    // 500 ms at one call per 22 ms: about 23, minus the first window's start.
    expect(alone.granted.length).toBeGreaterThan(15);
  });

  it('refuses at once, without queueing, a caller the queue cannot serve within its wait', async () => {
    const budget = freshBudget();
    const limiter = replica(budget);
    const queued = Array.from({ length: 30 }, () => limiter.acquire({ maxWaitMs: 10_000, client: 'deep' }));
    const answer = await limiter.request({ client: 'deep', priority: 'interactive', giveUpAt: performance.now() + 100 });
    expect(answer).toBeInstanceOf(OutboundRateLimitRefusal);
    const refusal = answer as OutboundRateLimitRefusal;
    expect(refusal.waitMs).toBeGreaterThan(100);
    expect(refusal.publicMessage).toMatch(/client deep's share of the fleet's vendor budget \(interactive\)/);
    await Promise.all(queued);
  });

  it('takes the ticket of a caller that hangs up out of the queue', async () => {
    const budget = freshBudget();
    const limiter = replica(budget);
    const ahead = Array.from({ length: 12 }, () => limiter.acquire({ maxWaitMs: 10_000, client: 'ahead' }));
    const caller = new AbortController();
    const waiting = limiter.acquire({ maxWaitMs: 10_000, client: 'gone', signal: caller.signal });
    expect(await settledState(waiting)).toBe('pending');
    caller.abort(new Error('hung up'));
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError', cause: new Error('hung up') });
    await Promise.all(ahead);
    const look = clients.plain(server.url);
    await until(async () => (await look.hlen(budget.tickets)) === 0, 'the ticket left');
    expect(await look.zcard(budget.interactiveQueue)).toBe(0);
  });

  it('counts the calls a replica carried back from its own share, and leaves room for the members that lapsed', async () => {
    const budget = freshBudget();
    const a = replica(budget, RULES, 'member-a');
    const b = replica(budget, RULES, 'member-b');
    await b.renew();
    await a.renew();
    expect(a.fleetView()).toMatchObject({ active: 2, lapsed: 0, share: 5 });
    // b goes quiet: once its lease lapses, a's grants leave room for b's 5 per window.
    await until(async () => {
      await a.renew();
      return a.fleetView()!.lapsed === 1;
    }, "b's lease lapsed");
    expect(a.fleetView()!.lapsedMembers).toEqual(['member-b']);
    const before = (await slotScores(budget)).length;
    await Promise.all(Array.from({ length: 10 }, () => a.acquire({ maxWaitMs: 10_000, client: 'c' })));
    const scores = (await slotScores(budget)).slice(before);
    expect(smallestGap(scores)).toBeGreaterThanOrEqual(SPAN / 5 - FLOAT_EPSILON_MS);

    // Carried calls land in the log where they happened.
    const c = replica(budget, RULES, 'member-c');
    c.carryNotesFrom({ pending: () => ({ carried: [['first', -50], ['second', -10]] }), delivered: () => undefined });
    await c.renew();
    await c.renew();
    const carried = await clients.plain(server.url).zrange(budget.slots, '0', '-1');
    expect(carried.filter((member) => member.startsWith('member-c:carried:'))).toHaveLength(2);
  });

  it('re-asserts the members a replica last saw when Redis lost them, and forgets a member that leaves', async () => {
    const budget = freshBudget();
    const a = replica(budget, RULES, 'member-a');
    const b = replica(budget, RULES, 'member-b');
    await b.renew();
    await a.renew();
    const seen = a.fleetView()!.members;
    const look = clients.plain(server.url);
    await look.del(budget.members, budget.shares);
    let delivered = false;
    a.carryNotesFrom({ pending: () => (delivered ? undefined : { fleet: seen }), delivered: () => void (delivered = true) });
    await a.renew();
    expect(delivered).toBe(true);
    expect(a.fleetView()).toMatchObject({ active: 1, lapsed: 1, lapsedMembers: ['member-b'] });
    await b.leave();
    await a.renew();
    expect(a.fleetView()).toMatchObject({ active: 1, lapsed: 0 });
  });

  it('trades the slot of a caller not ready at it (no warm connection) for a later one, told of each slot', async () => {
    const budget = freshBudget();
    // A margin wide enough that a stalled test process does not make the slot late instead.
    const limiter = new RedisOutboundRateLimiter(clients.plain(server.url), budget, { ...RULES, safetyMarginMs: 400 }, 'unready');
    const told: number[] = [];
    let asked = 0;
    // Not ready at its first slot, ready at the next.
    const readiness = { expect: (slotAt: number) => void told.push(slotAt), ready: () => ++asked > 1 };
    await limiter.acquire({ maxWaitMs: 1000, client: 'x', readiness });
    expect(limiter.unreadySlots()).toBe(1);
    expect(limiter.lateSlots()).toBe(0);
    expect(told).toHaveLength(2);
    expect(told[1]! - told[0]!).toBeGreaterThan(0);
    // The slot it could not use left the log: one call, one slot.
    expect((await slotScores(budget)).length).toBe(1);
  });

  /**
   * Two calls of one caller, the second's wait waking `oversleepMs` late. Heard from Redis once
   * first: on a fresh connection the first call also connects and loads the script, and its answer
   * can arrive after a slot granted before any round trip was measured (a lead of 2 ms): that slot
   * would count as late too.
   */
  async function secondCallWakesLate(rules: typeof RULES, oversleepMs: number) {
    const budget = freshBudget();
    let oversleep = 0;
    const limiter = new RedisOutboundRateLimiter(clients.plain(server.url), budget, rules, 'sleepy', undefined, async (ms) => {
      await new Promise((resolve) => setTimeout(resolve, ms + oversleep));
      oversleep = 0;
    });
    await limiter.renew();
    await limiter.acquire({ maxWaitMs: 1000, client: 'x' });
    oversleep = oversleepMs;
    await limiter.acquire({ maxWaitMs: 1000, client: 'x' });
    return { limiter, budget };
  }

  it('trades the slot of a caller that woke too late for one at the front of the queue', async () => {
    const { limiter, budget } = await secondCallWakesLate(RULES, 50);
    expect(limiter.lateSlots()).toBe(1);
    // The late slot left the log: two calls, two slots.
    expect((await slotScores(budget)).length).toBe(2);
  });

  it('lets a caller that woke late within the margin go on its slot, traded for nothing', async () => {
    // A margin wide enough that this machine's own timer lateness stays far inside it; the wake
    // more than half of it late, less than the whole.
    const { limiter, budget } = await secondCallWakesLate({ ...RULES, safetyMarginMs: 400 }, 250);
    expect(limiter.lateSlots()).toBe(0);
    expect((await slotScores(budget)).length).toBe(2);
  });

  it('moves a slot whose call reached the wire late to where it left, so that another replica places the slot a span later after it', async () => {
    const budget = freshBudget();
    const [sender, other] = [replica(budget), replica(budget)];
    const told: number[] = [];
    let wired: ((at: number) => void) | undefined;
    const readiness = { expect: (slotAt: number) => void told.push(slotAt), ready: () => true, taken: (report: (at: number) => void) => (wired = report) };
    await sender.acquire({ maxWaitMs: 1000, client: 'x', readiness });
    const [due] = await slotScores(budget);
    // Written 50 ms after its slot: 30 past the tolerance (the whole 20 ms margin).
    wired!(told.at(-1)! + 50);
    await until(async () => (await slotScores(budget))[0]! > due!, 'the late call moved in the log', 2000);
    expect((await slotScores(budget))[0]).toBeCloseTo(due! + 30, 3);
    expect(sender.lateWires()).toBe(1);

    await Promise.all(Array.from({ length: RULES.limit }, () => other.acquire({ maxWaitMs: 2000, client: 'y' })));
    const slots = await slotScores(budget);
    expect(slots).toHaveLength(RULES.limit + 1);
    // The call a whole budget after the late one keeps a span from where it left, not from its slot.
    expect(slots.at(-1)! - (due! + 30)).toBeGreaterThanOrEqual(SPAN - FLOAT_EPSILON_MS);
    expectInvariant(slots);
  });

  describe('a caller whose slots all come too late', () => {
    /** Oversleeps 40 ms: every slot is late (the tolerance is the 20 ms margin). */
    const OVERSLEEP_MS = 40;

    /**
     * A replica whose waits oversleep, on a watched connection, measured 40 ms from Redis (a lead
     * of 22 ms), that has heard from Redis once (the connection is up, the script loaded, the
     * clocks matched).
     */
    async function sleepyReplica(budget: OutboundBudgetKeys, runs: SentRun[], onWait?: () => void): Promise<RedisOutboundRateLimiter> {
      const limiter = new RedisOutboundRateLimiter(
        watched(clients.plain(server.url), runs),
        budget,
        RULES,
        `sleepy-${randomUUID().slice(0, 6)}`,
        undefined,
        oversleeping(OVERSLEEP_MS, onWait),
      );
      await limiter.renew();
      // Every slot comes with a wait before it (so the oversleep applies), whatever this machine's round trip.
      for (let i = 0; i < 20; i++) limiter.roundTrip.record(40);
      expect(limiter.timing().leadMs).toBe(22);
      runs.length = 0;
      return limiter;
    }

    it('is refused once its wait is over, having traded its late slots, instead of trading them forever', async () => {
      const budget = freshBudget();
      const runs: SentRun[] = [];
      const limiter = await sleepyReplica(budget, runs);
      const maxWaitMs = 160;
      const askedAt = performance.now();
      const outcome = await within(
        limiter.acquire({ maxWaitMs, client: 'late' }).then(
          () => 'served' as const,
          (error: unknown) => error,
        ),
        5000,
      );
      const tookMs = performance.now() - askedAt;
      expect(outcome).toBeInstanceOf(OutboundRateLimitRefusal);
      expect(limiter.lateSlots()).toBeGreaterThan(0);
      // Each trade costs a lead and the oversleep: a few within the wait, never unbounded.
      expect(limiter.lateSlots()).toBeLessThanOrEqual(Math.ceil(maxWaitMs / OVERSLEEP_MS) + 1);
      // Refused when the wait ran out, or as no new slot fitted in what was left of it; not later
      // than one more late wake-up (and this machine's slack).
      expect(tookMs).toBeGreaterThan(maxWaitMs - OVERSLEEP_MS - SPACING);
      expect(tookMs).toBeLessThan(maxWaitMs + OVERSLEEP_MS + 300);
      // Traded within its wait only: no slot asked for once nothing was left of it.
      const asked = runs.filter(({ request }) => request.ticket !== undefined);
      for (const { request } of asked) expect(request.ticket!.maxWaitMs).toBeGreaterThan(0);
      // The last late slot was given back: nothing of this caller is left in the log.
      const look = clients.plain(server.url);
      await until(async () => (await look.zcard(budget.slots)) === 0, 'the late slots left the log');
      expect(await look.hlen(budget.tickets)).toBe(0);
    });

    it('stops, and gives its slot back, when its caller went away while it slept past the slot', async () => {
      const budget = freshBudget();
      const runs: SentRun[] = [];
      const caller = new AbortController();
      let abortedAt = Number.POSITIVE_INFINITY;
      // The caller hangs up during its first wait; the late wake-up does not hear of it.
      const limiter = await sleepyReplica(budget, runs, () => {
        if (caller.signal.aborted) return;
        setTimeout(() => {
          abortedAt = performance.now();
          caller.abort(new Error('hung up'));
        }, 5);
      });
      const askedAt = performance.now();
      const outcome = await within(
        limiter.acquire({ maxWaitMs: 2000, client: 'gone', signal: caller.signal }).then(
          () => 'served' as const,
          (error: unknown) => error,
        ),
        5000,
      );
      expect(outcome).toMatchObject({ name: 'AbortError', cause: new Error('hung up') });
      expect(limiter.lateSlots()).toBe(1);
      // At once after the late wake-up: not after trading until its wait of 2 s ran out.
      expect(performance.now() - askedAt).toBeLessThan(1000);
      // Nothing asked for the caller that left.
      expect(runs.filter(({ sentAt, request }) => sentAt > abortedAt && request.ticket !== undefined)).toEqual([]);
      const look = clients.plain(server.url);
      await until(async () => (await look.zcard(budget.slots)) === 0, 'the late slot left the log');
      expect(await look.hlen(budget.tickets)).toBe(0);
    });
  });

  it('does not put a replica that left back in the fleet: not by its heartbeat, nor by a straggling caller', async () => {
    const budget = freshBudget();
    const look = clients.plain(server.url);
    const leaving = replica(budget, RULES, 'leaving');
    const stays = replica(budget, RULES, 'stays');
    await leaving.renew();
    await stays.renew();
    expect(await look.zscore(budget.members, 'leaving')).not.toBeNull();

    await leaving.leave();
    const gone = async (): Promise<void> => {
      expect(await look.zscore(budget.members, 'leaving')).toBeNull();
      expect(await look.hexists(budget.shares, 'leaving')).toBe(0);
      expect(await look.hexists(budget.reaches, 'leaving')).toBe(0);
    };
    await gone();
    // A heartbeat already on its way when the shutdown began.
    await leaving.renew();
    await gone();
    // A caller that arrived late in the shutdown: it is not served through the fleet's scheduler
    // (a member that left has no lease for its tickets), and the replica stays out.
    const answer = await within(leaving.request({ client: 'late', priority: 'interactive', giveUpAt: performance.now() + 100 }), 5000);
    expect(answer).toBeInstanceOf(OutboundRateLimitRefusal);
    await gone();
    await stays.renew();
    expect(stays.fleetView()).toMatchObject({ active: 1, lapsed: 0, members: [['stays', RULES.limit]] });
  });

  describe('suspended (Redis answers too slowly to schedule through)', () => {
    it('refuses every caller with SchedulerSuspended without a call to Redis: the lease is left to lapse', async () => {
      const budget = freshBudget();
      const runs: SentRun[] = [];
      const look = clients.plain(server.url);
      const limiter = new RedisOutboundRateLimiter(watched(clients.plain(server.url), runs), budget, RULES, 'off');
      await limiter.renew();
      const lease = await look.zscore(budget.members, 'off');
      expect(lease).not.toBeNull();
      const sent = runs.length;

      limiter.suspend('the round trip is 120 ms');
      const ask = { client: 'c', priority: 'interactive' as const, giveUpAt: performance.now() + 1000 };
      await expect(limiter.request(ask)).rejects.toBeInstanceOf(SchedulerSuspended);
      await expect(limiter.acquire({ maxWaitMs: 1000, client: 'c' })).rejects.toThrow(/keeps off the shared scheduler: the round trip is 120 ms/);
      await expect(limiter.renew()).rejects.toBeInstanceOf(SchedulerSuspended);
      expect(runs.length).toBe(sent);
      expect(await look.zscore(budget.members, 'off')).toBe(lease);
      expect(await look.zcard(budget.slots)).toBe(0);

      // The round trip is still measured (it tells when to come back), without touching the lease.
      expect(limiter.roundTrip.typicalMs()).toBeDefined();
      const fresh = new RedisOutboundRateLimiter(clients.plain(server.url), budget, RULES, 'measuring');
      expect(fresh.roundTrip.typicalMs()).toBeUndefined();
      fresh.suspend('slow');
      const measured = await fresh.measureRoundTrip();
      expect(measured).toBeGreaterThanOrEqual(0);
      expect(fresh.roundTrip.typicalMs()).toBe(measured);
      expect(await look.zscore(budget.members, 'measuring')).toBeNull();

      // Back: served through the scheduler again.
      limiter.resume();
      const answer = await limiter.request(ask);
      expect(answer).not.toBeInstanceOf(OutboundRateLimitRefusal);
      expect(Number(await look.zscore(budget.members, 'off'))).toBeGreaterThan(Number(lease));
      expect(await look.zcard(budget.slots)).toBe(1);
    });

    it('fails a caller waiting for its grant with SchedulerSuspended as the suspension comes, and serves again after resume', async () => {
      const budget = freshBudget();
      const runs: SentRun[] = [];
      const limiter = new RedisOutboundRateLimiter(watched(clients.plain(server.url), runs), budget, RULES, 'waits');
      // Another replica's callers of the same client fill more than a horizon: this one's caller
      // queues behind them in the client's line. Twice as many as the queue needs: on a starved test
      // worker their tickets reach Redis spread out, while the first ones are already being served.
      const busy = replica(budget);
      const ahead = Array.from({ length: 24 }, () => busy.acquire({ maxWaitMs: 10_000, client: 'ahead' }));
      await until(async () => (await clients.plain(server.url).zcard(budget.lines)) >= 8, 'a queue formed');
      const waiting = limiter.request({ client: 'ahead', priority: 'interactive', giveUpAt: performance.now() + 5000 });
      await until(() => runs.some(({ request, answered }) => request.ticket !== undefined && answered), 'the ticket was queued');
      expect(await settledState(waiting)).toBe('pending');

      limiter.suspend('the round trip is 120 ms');
      expect(await within(waiting.catch((error: unknown) => error), 2000)).toBeInstanceOf(SchedulerSuspended);
      const sent = runs.length;
      // No dispatch runs for it afterwards.
      await new Promise((resolve) => setTimeout(resolve, 3 * SPACING));
      expect(runs.length).toBe(sent);

      limiter.resume();
      await Promise.all(ahead);
      await limiter.acquire({ maxWaitMs: 5000, client: 'ahead' });
      expect(runs.length).toBeGreaterThan(sent);
    });

    /** The tickets of a replica still in the scheduler (queued, or granted and not collected). */
    async function ticketsOf(budget: OutboundBudgetKeys, owner: string): Promise<string[]> {
      const tickets = await clients.plain(server.url).hgetall(budget.tickets);
      return Object.keys(tickets).filter((ticket) => tickets[ticket]!.startsWith(`${owner}|`));
    }

    /** A replica on a watched connection, and another whose 12 callers of client 'ahead' queue first. */
    async function behindAQueue(budget: OutboundBudgetKeys, runs: SentRun[], gate: Gate = {}) {
      const limiter = new RedisOutboundRateLimiter(watched(clients.plain(server.url), runs, gate), budget, RULES, 'waits');
      const busy = replica(budget);
      const ahead = Array.from({ length: 12 }, () => busy.acquire({ maxWaitMs: 10_000, client: 'ahead' }));
      await until(async () => (await clients.plain(server.url).zcard(budget.lines)) >= 8, 'a queue formed');
      return { limiter, ahead };
    }

    it('fails a caller whose ticket was on its way when the suspension came, and gives that ticket back after resume', async () => {
      const budget = freshBudget();
      const runs: SentRun[] = [];
      const gate: Gate = {};
      const { limiter, ahead } = await behindAQueue(budget, runs, gate);
      let open = (): void => undefined;
      gate.closed = new Promise<void>((resolve) => (open = resolve));
      const waiting = limiter.request({ client: 'ahead', priority: 'interactive', giveUpAt: performance.now() + 5000 });
      await until(() => runs.some(({ request, answered }) => request.ticket !== undefined && answered), 'the ticket was queued');
      expect(await ticketsOf(budget, 'waits')).toHaveLength(1);

      // The suspension comes while the answer that queued the ticket is on its way back.
      limiter.suspend('the round trip is 120 ms');
      gate.closed = undefined;
      open();
      expect(await within(waiting.catch((error: unknown) => error), 2000)).toBeInstanceOf(SchedulerSuspended);

      // Nobody will collect its grant: the first run after the suspension gives it back.
      limiter.resume();
      await limiter.renew();
      expect(await ticketsOf(budget, 'waits')).toEqual([]);
      await Promise.all(ahead);
    });

    it('gives back, after resume, the tickets of the callers the suspension failed', async () => {
      const budget = freshBudget();
      const runs: SentRun[] = [];
      const { limiter, ahead } = await behindAQueue(budget, runs);
      const waiting = limiter.request({ client: 'ahead', priority: 'interactive', giveUpAt: performance.now() + 5000 });
      await until(() => runs.some(({ request, answered }) => request.ticket !== undefined && answered), 'the ticket was queued');
      limiter.suspend('the round trip is 120 ms');
      expect(await within(waiting.catch((error: unknown) => error), 2000)).toBeInstanceOf(SchedulerSuspended);

      limiter.resume();
      await limiter.renew();
      try {
        expect(await ticketsOf(budget, 'waits')).toEqual([]);
      } finally {
        await Promise.all(ahead);
      }
    });
  });

  describe('when Redis does not answer', () => {
    it('fails a request and every queued caller with RedisCallFailed, at once', async () => {
      const own = await startPrivateRedis();
      const redis = clients.gatewayLike(own);
      await until(() => redis.status === 'ready', 'the client is connected');
      const limiter = new RedisOutboundRateLimiter(redis, freshBudget(), RULES, 'cut-off');
      const queued = Array.from({ length: 20 }, () => limiter.acquire({ maxWaitMs: 10_000, client: 'q' }).catch((e: unknown) => e));
      await until(async () => (await settledState(queued[19]!)) === 'pending', 'callers queued');
      await own.stop();
      const failures = await Promise.all(queued);
      expect(failures.filter((f) => f instanceof RedisCallFailed).length).toBeGreaterThan(0);
      expect(failures.every((f) => f === undefined || f instanceof RedisCallFailed)).toBe(true);
      await expect(limiter.request({ client: 'q', priority: 'interactive', giveUpAt: performance.now() + 100 })).rejects.toBeInstanceOf(
        RedisCallFailed,
      );
    });

    it('reports an answer of an unexpected shape as RedisCallFailed', async () => {
      const fake = { evalsha: async () => 'not json' } as unknown as Redis;
      const limiter = new RedisOutboundRateLimiter(fake, freshBudget(), RULES, 'odd');
      await expect(limiter.renew()).rejects.toBeInstanceOf(RedisCallFailed);
    });
  });
});
