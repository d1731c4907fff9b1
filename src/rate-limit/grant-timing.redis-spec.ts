/**
 * The schedule script's grant timing on a real Redis (lua/schedule-outbound.lua): no slot closer
 * than the caller's `leadMs` to Redis's now; each member grants up to its own horizon, which
 * grows only a lease after it was asked for (the reply's `reach` tells the raise at once) and
 * shrinks at once; a member that leaves, or is forgotten, takes its horizon along.
 *
 * Most tests run the script directly at logical times (the test-only `clockMs`, as
 * fair-queue.differential.redis-spec.ts does), so every slot is exact and nothing depends on how
 * busy the machine is; the lead is also checked through RedisOutboundRateLimiter on Redis's clock.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { RedisClients } from '../../test/support/redis-clients.js';
import { startTestRedis, stopAllRedis, type TestRedis } from '../../test/support/redis-server.js';
import { RedisKeys, type OutboundBudgetKeys } from '../redis/redis-keys.js';
import { OutboundRateLimitRefusal } from './outbound-rate-limiter.js';
import {
  parseScheduleReply,
  RedisOutboundRateLimiter,
  SCHEDULE_SCRIPT,
  scheduleScriptKeys,
  scheduleScriptRules,
  type ScheduleReply,
  type SchedulerRules,
} from './redis-outbound-rate-limiter.js';
import type { GrantTiming } from './redis-round-trip.js';

/** 10 calls per 200 ms (+20 ms margin): slots 22 ms apart; a 60 ms base horizon, a 400 ms lease. */
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
const SPACING = (RULES.windowMs + RULES.safetyMarginMs) / RULES.limit;
const BASE = RULES.horizonMs;
const LEASE = RULES.leaseMs;
/** A longer horizon than the base: what a replica with a slow round trip asks for. */
const LONG = 150;
/** Where the logical clock starts. */
const T0 = 1_000_000;

const clients = new RedisClients();
let server: TestRedis;
let redis: Redis;

const freshBudget = (): OutboundBudgetKeys => new RedisKeys(`timing-${randomUUID().slice(0, 8)}`).outboundBudget(7);

/** The script's `rules` as the gateway sends them, or with fields left out (an older caller). */
type Rules = Record<string, number>;

/**
 * One member of the fleet calling the script itself, as RedisOutboundRateLimiter does (its waiting
 * tickets go with every call, so their grants are collected), at logical times.
 */
class Member {
  /** Tickets queued and not yet granted. */
  readonly waiting = new Set<string>();
  /** Every grant this member collected: ticket -> slot (logical ms). */
  readonly granted = new Map<string, number>();

  constructor(
    private readonly budget: OutboundBudgetKeys,
    readonly id: string,
  ) {}

  /** Rules asking for `timing` (lead 0 and the base horizon when none). */
  static rules(timing?: GrantTiming): Rules {
    return { ...scheduleScriptRules(RULES, timing) };
  }

  async call(at: number, rules: Rules, body: Record<string, unknown> = {}): Promise<ScheduleReply> {
    const request = { replica: this.id, rules, waiting: [...this.waiting], clockMs: at, ...body };
    const reply = parseScheduleReply(await SCHEDULE_SCRIPT.run(redis, scheduleScriptKeys(this.budget), [JSON.stringify(request)]));
    expect(Number(reply.now)).toBe(at);
    for (const [ticket, offset] of reply.grants) {
      this.waiting.delete(ticket);
      this.granted.set(ticket, at + offset);
    }
    if (reply.ticket?.state === 'queued') this.waiting.add(reply.ticket.id);
    if (reply.ticket?.state === 'granted') this.granted.set(reply.ticket.id, at + reply.ticket.slot!);
    return reply;
  }

  /** A caller asking for a slot (a long wait: it is served, however deep the queue). */
  ask(at: number, rules: Rules, maxWaitMs = 60_000): Promise<ScheduleReply> {
    const ticket = { id: randomUUID(), client: `client-of-${this.id}`, weight: 1, level: 'i', maxWaitMs, front: false, replacing: '' };
    return this.call(at, rules, { ticket });
  }

  leave(at: number, rules: Rules): Promise<ScheduleReply> {
    return this.call(at, rules, { leaving: true });
  }
}

/** The slot log: ticket -> slot (logical ms). */
async function slotLog(budget: OutboundBudgetKeys): Promise<Map<string, number>> {
  const flat = await redis.zrange(budget.slots, '0', '-1', 'WITHSCORES');
  const log = new Map<string, number>();
  for (let i = 0; i < flat.length; i += 2) log.set(flat[i]!, Number(flat[i + 1]));
  return log;
}

/** The slots one call added to the log, as offsets from its `now`. */
async function addedBy(budget: OutboundBudgetKeys, at: number, call: () => Promise<unknown>): Promise<number[]> {
  const before = await slotLog(budget);
  await call();
  const after = await slotLog(budget);
  return [...after].filter(([ticket]) => !before.has(ticket)).map(([, slot]) => slot - at);
}

/** A member's record in the reaches hash: [current, raise, raiseAt], or undefined. */
async function reachRecord(budget: OutboundBudgetKeys, member: string): Promise<string[] | undefined> {
  const record = await redis.hget(budget.reaches, member);
  return record === null ? undefined : record.split('|');
}

beforeAll(async () => {
  server = await startTestRedis();
  redis = clients.plain(server.url);
});
afterAll(async () => {
  await clients.closeAll();
  await stopAllRedis();
});

describe('the grant lead', () => {
  it("gives a lone caller a slot no closer than its lead to Redis's now", async () => {
    const budget = freshBudget();
    const member = new Member(budget, 'alone');
    for (const leadMs of [2, 25, 40]) {
      const at = T0 + 10_000 * leadMs;
      const reply = await member.ask(at, Member.rules({ leadMs, horizonMs: 100 }));
      expect(reply.ticket).toMatchObject({ state: 'granted' });
      expect(reply.ticket!.slot).toBeGreaterThanOrEqual(leadMs);
      // No later than the lead either, with nothing else in the log.
      expect(reply.ticket!.slot).toBe(leadMs);
    }
  });

  it('grants every slot of a queue, by whichever call, at least the lead after that call', async () => {
    const budget = freshBudget();
    const member = new Member(budget, 'queue');
    const rules = Member.rules({ leadMs: 30, horizonMs: 100 });
    let at = T0;
    const offsets: number[] = [];
    // 12 callers at once, then the dispatches as slots enter the horizon (and some in between).
    for (let i = 0; i < 12; i++) offsets.push(...(await addedBy(budget, at, () => member.ask(at, rules))));
    while (member.waiting.size > 0) {
      at += 7;
      offsets.push(...(await addedBy(budget, at, () => member.call(at, rules))));
      expect(at).toBeLessThan(T0 + 2000);
    }
    expect(offsets).toHaveLength(12);
    expect(Math.min(...offsets)).toBeGreaterThanOrEqual(30);
    expect(Math.max(...offsets)).toBeLessThanOrEqual(100);
  });

  it("counts the lead as the answer's way back, not as a wait: a caller that would not wait gets a free slot, not a busy one", async () => {
    const budget = freshBudget();
    const member = new Member(budget, 'impatient');
    const rules = Member.rules({ leadMs: 30, horizonMs: 100 });
    const served = await member.ask(T0, rules, 0);
    expect(served.ticket).toMatchObject({ state: 'granted', slot: 30 });
    // The next free slot is a spacing after that one: more than the lead, so a wait it will not take.
    const refused = await member.ask(T0, rules, 0);
    expect(refused.ticket).toMatchObject({ state: 'refused', estimate: 30 + SPACING });
    const waiting = await member.ask(T0, rules, SPACING);
    expect(waiting.ticket).toMatchObject({ state: 'granted', slot: 30 + SPACING });
  });

  it("through RedisOutboundRateLimiter: the lead grows with the measured round trip, on Redis's own clock", async () => {
    const budget = freshBudget();
    const runs: Array<{ rules: Rules; reply: ScheduleReply }> = [];
    const limiter = new RedisOutboundRateLimiter(watched(redis, runs), budget, RULES, 'measured');
    const ask = () => ({ client: 'c', priority: 'interactive' as const, giveUpAt: performance.now() + 1000 });

    expect(await limiter.request(ask())).not.toBeInstanceOf(OutboundRateLimitRefusal);
    // Before any round trip was measured: a timer's granularity, and the base horizon.
    expect(runs[0]!.rules).toMatchObject({ leadMs: 2, horizonMs: BASE, baseHorizonMs: BASE });
    expect(runs[0]!.reply.ticket).toMatchObject({ state: 'granted' });
    expect(runs[0]!.reply.ticket!.slot).toBeGreaterThanOrEqual(2);

    // A Redis 60 ms away: half of that and a timer's granularity; a horizon of a spacing, the
    // round trip and the dispatch allowance.
    for (let i = 0; i < 20; i++) limiter.roundTrip.record(60);
    expect(limiter.timing()).toEqual({ leadMs: 32, horizonMs: 90 });
    const sent = runs.length;
    expect(await limiter.request(ask())).not.toBeInstanceOf(OutboundRateLimitRefusal);
    const second = runs[sent]!;
    expect(second.rules).toMatchObject({ leadMs: 32, horizonMs: 90, baseHorizonMs: BASE });
    // Granted in the same call: the first slot is 22 ms from its call, this one 32 ms from its own
    // (within the base horizon, which is what this member may use until its raise applies).
    expect(second.reply.ticket).toMatchObject({ state: 'granted' });
    expect(second.reply.ticket!.slot).toBeGreaterThanOrEqual(32);
    expect(second.reply.horizon).toBe(BASE);
    expect(second.reply.reach).toBe(90);
  });
});

describe('the grant horizon', () => {
  /** A member asking for the long horizon from its first call, with `count` callers queued at T0. */
  async function raisedWithQueue(budget: OutboundBudgetKeys, count: number): Promise<{ member: Member; rules: Rules }> {
    const member = new Member(budget, 'slow-one');
    const rules = Member.rules({ leadMs: 0, horizonMs: LONG });
    for (let i = 0; i < count; i++) {
      const reply = await member.ask(T0, rules);
      expect(reply.horizon).toBe(BASE);
      expect(reply.reach).toBe(LONG);
    }
    return { member, rules };
  }

  it('grows only a lease after it was asked for, and the replies tell the raise at once', async () => {
    const budget = freshBudget();
    const other = new Member(budget, 'quick-one');
    const base = Member.rules();
    expect((await other.call(T0, base)).reach).toBe(BASE);

    // 40 callers queued: far more slots than any horizon holds.
    const { member, rules } = await raisedWithQueue(budget, 40);
    expect(await reachRecord(budget, 'slow-one')).toEqual([String(BASE), String(LONG), String(T0 + LEASE)]);
    // Another member hears of the raise at once.
    expect((await other.call(T0 + 1, base)).reach).toBe(LONG);

    // Until the lease has passed, every slot in the log is within the base horizon of the call
    // that granted it, although the queue would fill the longer one.
    for (const at of [T0, T0 + 100, T0 + 250, T0 + 300, T0 + LEASE - 1]) {
      if (at === T0 + 300) expect((await other.call(at, base)).reach).toBe(LONG); // keeps its lease
      const reply = await member.call(at, rules);
      expect(reply.horizon).toBe(BASE);
      expect(reply.reach).toBe(LONG);
      const newest = Math.max(...(await slotLog(budget)).values());
      expect(newest).toBeLessThanOrEqual(at + BASE);
      // Not for want of callers: the next slot would be inside the longer horizon.
      expect(newest + SPACING).toBeLessThanOrEqual(at + LONG);
      expect(reply.dispatchIn).toBeGreaterThanOrEqual(0);
    }

    // From the lease on, the longer horizon: slots past the base one, none past the longer.
    const at = T0 + LEASE;
    const added = await addedBy(budget, at, () => member.call(at, rules));
    expect(Math.max(...added)).toBeGreaterThan(BASE);
    expect(Math.max(...added)).toBeLessThanOrEqual(LONG);
    expect(await reachRecord(budget, 'slow-one')).toEqual([String(LONG), '', '']);
    const after = await member.call(at + 1, rules);
    expect(after.horizon).toBe(LONG);
    expect(after.reach).toBe(LONG);
  });

  it('does not restart the lease when the same raise is asked again, restarts it for a longer one', async () => {
    const budget = freshBudget();
    const member = new Member(budget, 'asker');
    const long = Member.rules({ leadMs: 0, horizonMs: LONG });
    const longer = Member.rules({ leadMs: 0, horizonMs: LONG + 50 });
    await member.call(T0, long);
    await member.call(T0 + 200, long);
    expect((await member.call(T0 + LEASE, long)).horizon).toBe(LONG);

    const other = new Member(budget, 'other');
    await other.call(T0, long);
    // A longer one asked while the first is pending: the longer waits a lease of its own.
    const pending = await other.call(T0 + 200, longer);
    expect(pending.reach).toBe(LONG + 50);
    // Its own horizon (the fleet's dispatch reaches as far as the asker's LONG meanwhile).
    const current = async (at: number): Promise<string | undefined> => {
      await other.call(at, longer);
      return (await reachRecord(budget, 'other'))?.[0];
    };
    expect(await current(T0 + LEASE)).toBe(String(BASE));
    expect(await current(T0 + 200 + LEASE - 1)).toBe(String(BASE));
    expect(await current(T0 + 200 + LEASE)).toBe(String(LONG + 50));
  });

  it('grants, whoever dispatches, as far ahead as the live member that needs it furthest', async () => {
    const budget = freshBudget();
    const far = new Member(budget, 'far');
    const near = new Member(budget, 'near');
    const long = Member.rules({ leadMs: 0, horizonMs: LONG });
    const base = Member.rules({ leadMs: 0, horizonMs: BASE });
    await far.call(T0, long);
    await far.call(T0 + LEASE, long);
    expect((await near.call(T0 + LEASE, base)).horizon).toBe(LONG);
    // Once the far member's lease lapsed (it collects nothing), the near one grants with its own.
    expect((await near.call(T0 + 2 * LEASE + 1, base)).horizon).toBe(BASE);
    // The lapsed member still counts in the reach: it may come back with its horizon.
    expect((await near.call(T0 + 2 * LEASE + 2, base)).reach).toBe(LONG);
  });

  it('keeps the pending raise due when a shorter one (still over the current) is asked meanwhile', async () => {
    const budget = freshBudget();
    const member = new Member(budget, 'asker');
    await member.call(T0, Member.rules({ leadMs: 0, horizonMs: LONG }));
    const shorter = Member.rules({ leadMs: 0, horizonMs: 100 });
    expect((await member.call(T0 + 200, shorter)).reach).toBe(100);
    expect((await member.call(T0 + LEASE - 1, shorter)).horizon).toBe(BASE);
    expect((await member.call(T0 + LEASE, shorter)).horizon).toBe(100);
  });

  it('shrinks at once: a shorter horizon bounds the very call that asks for it, and drops a pending raise', async () => {
    const budget = freshBudget();
    const { member, rules } = await raisedWithQueue(budget, 40);
    await member.call(T0 + LEASE, rules);
    expect((await member.call(T0 + LEASE + 1, rules)).horizon).toBe(LONG);
    const newest = Math.max(...(await slotLog(budget)).values());

    // Asked down to 70 a little later: nothing granted past 70 ms from this call on.
    const short = Member.rules({ leadMs: 0, horizonMs: 70 });
    let at = newest - 70 - 1;
    const reply = await member.call(at, short);
    expect(reply.horizon).toBe(70);
    expect(reply.reach).toBe(70);
    expect(await reachRecord(budget, 'slow-one')).toEqual(['70', '', '']);
    for (; at < newest + 200; at += 11) {
      const added = await addedBy(budget, at, () => member.call(at, short));
      for (const offset of added) expect(offset).toBeLessThanOrEqual(70);
    }
    expect(member.waiting.size).toBeGreaterThan(0);

    // Up again: another lease, and a pending raise dropped by a shorter ask never applies.
    const raisedAt = at;
    expect((await member.call(raisedAt, rules)).horizon).toBe(70);
    expect((await member.call(raisedAt + 100, Member.rules())).horizon).toBe(BASE);
    expect((await member.call(raisedAt + LEASE, Member.rules())).horizon).toBe(BASE);
    expect(await reachRecord(budget, 'slow-one')).toEqual([String(BASE), '', '']);
  });

  it("takes a member's horizon along when it leaves: the others' reach falls back", async () => {
    const budget = freshBudget();
    const base = Member.rules();
    const stays = new Member(budget, 'stays');
    const leaves = new Member(budget, 'leaves');
    await stays.call(T0, base);
    await leaves.call(T0, Member.rules({ leadMs: 0, horizonMs: LONG }));
    expect((await stays.call(T0 + 10, base)).reach).toBe(LONG);
    const left = await leaves.leave(T0 + 20, Member.rules({ leadMs: 0, horizonMs: LONG }));
    expect(left.horizon).toBe(BASE);
    expect(await reachRecord(budget, 'leaves')).toBeUndefined();
    expect((await stays.call(T0 + 30, base)).reach).toBe(BASE);

    // The same once the raise had applied.
    await leaves.call(T0 + 100, Member.rules({ leadMs: 0, horizonMs: LONG }));
    await leaves.call(T0 + 100 + LEASE, Member.rules({ leadMs: 0, horizonMs: LONG }));
    expect(await reachRecord(budget, 'leaves')).toEqual([String(LONG), '', '']);
    expect((await stays.call(T0 + 100 + LEASE, base)).reach).toBe(LONG);
    await leaves.leave(T0 + 200 + LEASE, base);
    expect(await reachRecord(budget, 'leaves')).toBeUndefined();
    expect((await stays.call(T0 + 200 + LEASE, base)).reach).toBe(BASE);
  });

  it('forgets the horizon of a member forgotten after the lapse memory', async () => {
    const budget = freshBudget();
    const base = Member.rules();
    const stays = new Member(budget, 'stays');
    const gone = new Member(budget, 'gone');
    await gone.call(T0, Member.rules({ leadMs: 0, horizonMs: LONG }));
    // Lapsed, but remembered: its share is still left room for, and its reach still told.
    const lapsed = await stays.call(T0 + LEASE + 100, base);
    expect(lapsed.lapsed).toBe(1);
    expect(lapsed.reach).toBe(LONG);
    // Forgotten a memory after its lease ended.
    const later = await stays.call(T0 + LEASE + RULES.memoryMs + 1, base);
    expect(later.members).toBe(1);
    expect(later.reach).toBe(BASE);
    expect(await reachRecord(budget, 'gone')).toBeUndefined();
    // Back much later: it starts at the base again, and its raise waits a lease.
    const back = await gone.call(T0 + 10_000, Member.rules({ leadMs: 0, horizonMs: LONG }));
    expect(back.horizon).toBe(BASE);
    expect(back.reach).toBe(LONG);
  });
});

describe('a caller that sends neither leadMs nor baseHorizonMs (the differential spec, an older caller)', () => {
  const H = 100;
  const explicit = (): Rules => ({ ...scheduleScriptRules({ ...RULES, horizonMs: H }), leadMs: 0, baseHorizonMs: H });
  const legacy = (): Rules => {
    const { leadMs: _lead, baseHorizonMs: _base, ...rest } = scheduleScriptRules({ ...RULES, horizonMs: H });
    return rest;
  };

  it('grants from now on, up to its one horizon at once', async () => {
    const budget = freshBudget();
    const member = new Member(budget, 'old');
    const first = await member.ask(T0, legacy());
    expect(first.ticket).toMatchObject({ state: 'granted', slot: 0 });
    expect(first.horizon).toBe(H);
    expect(first.reach).toBe(H);
    // The first call's horizon is already the whole H (no lease to wait): slots 22, 44, 66, 88.
    for (let i = 0; i < 10; i++) await member.ask(T0, legacy());
    expect([...(await slotLog(budget)).values()].map((slot) => slot - T0)).toEqual([0, 22, 44, 66, 88]);
    expect(member.waiting.size).toBe(6);
  });

  it('answers as lead 0 and a base horizon equal to the one asked', async () => {
    const answers = async (rules: () => Rules): Promise<string[]> => {
      const member = new Member(freshBudget(), 'replay');
      const lines: string[] = [];
      const show = (reply: ScheduleReply): string =>
        JSON.stringify([reply.ticket?.state, reply.ticket?.slot, reply.ticket?.estimate, reply.grants.map(([, offset]) => offset), reply.dispatchIn, reply.horizon, reply.reach]);
      for (let i = 0; i < 8; i++) lines.push(show(await member.ask(T0 + 3 * i, rules())));
      for (let at = T0 + 30; member.waiting.size > 0 && at < T0 + 2000; at += 13) lines.push(show(await member.call(at, rules())));
      return lines;
    };
    const withFields = await answers(explicit);
    expect(await answers(legacy)).toEqual(withFields);
    expect(withFields.length).toBeGreaterThan(8);
  });
});

/**
 * The client with every script run recorded: the request's rules and the parsed reply (for
 * checking what RedisOutboundRateLimiter asked and was told on Redis's clock).
 */
function watched(redis: Redis, runs: Array<{ rules: Rules; reply: ScheduleReply }>): Redis {
  const record = (args: unknown[], raw: unknown): unknown => {
    const request = JSON.parse(String(args[args.length - 1])) as { rules: Rules };
    runs.push({ rules: request.rules, reply: parseScheduleReply(raw) });
    return raw;
  };
  return new Proxy(redis, {
    get(target, property) {
      if (property === 'evalsha' || property === 'eval') {
        return async (...args: unknown[]) => record(args, await (target[property] as (...a: unknown[]) => Promise<unknown>)(...args));
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
