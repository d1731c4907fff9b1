import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../redis/redis-connection.js';
import { LuaScript } from '../redis/lua-script.js';
import { RedisCallFailed } from '../redis/redis-call-failed.js';
import type { OutboundBudgetKeys } from '../redis/redis-keys.js';
import { type EventLoopLag, processEventLoopLag } from './event-loop-lag.js';
import { OutboundRateLimitRefusal, type AcquireOptions, type FairShare, type FleetView } from './outbound-rate-limiter.js';
import type { Priority } from './rate-limit.settings.js';
import { RedisClock } from './redis-clock.js';
import { ANONYMOUS_CLIENT } from './local-outbound-rate-limiter.js';
import { SlotLimiter, type HeldSlot } from './slot-limiter.js';
import { FAIR_ROUNDING_TOLERANCE } from './fair-queue.js';
import { fairShares } from './fair-shares.js';
import { spacingMs, type SlotRules } from './slot-schedule.js';
import { abortError, monotonicNow, realTimers, remainingWaitMs, timerWait, type SlotWait, type Timers } from './slot-wait.js';
import { grantTiming, RedisRoundTrip, type GrantTiming, type GrantTimingRules } from './redis-round-trip.js';

export const SCHEDULE_SCRIPT = LuaScript.load(new URL('./lua/schedule-outbound.lua', import.meta.url));

/** The fleet's budget and how the scheduler hands it out (see lua/schedule-outbound.lua). */
export interface SchedulerRules extends SlotRules, GrantTimingRules {
  /** Slots are granted at most this far ahead of now while Redis is quick; further as its round trip grows (grantTiming). */
  readonly horizonMs: number;
  /** How long a member's lease lasts after its last call; it renews far more often. */
  readonly leaseMs: number;
  /** How long the fleet leaves room for a member whose lease lapsed (it may be on its own share). */
  readonly memoryMs: number;
  readonly batchMinShare: number;
  weightOf(client: string): number;
}

/** The `rules` the schedule script is given with every call: every number it shares with the TypeScript side. */
export interface ScheduleScriptRules {
  readonly limit: number;
  readonly windowMs: number;
  readonly marginMs: number;
  /** The horizon this replica's round trip asks for; it applies a lease after it grew. */
  readonly horizonMs: number;
  /** The horizon any member may use at once. */
  readonly baseHorizonMs: number;
  readonly leadMs: number;
  readonly leaseMs: number;
  readonly memoryMs: number;
  readonly minShare: number;
  readonly tolerance: number;
}

/**
 * The script's rules for a budget and this replica's grant timing (none: a Redis next door):
 * FairQueue's constants go along, so that one process and the fleet count alike.
 */
export function scheduleScriptRules(
  rules: SchedulerRules,
  timing: GrantTiming = { leadMs: 0, horizonMs: rules.horizonMs },
): ScheduleScriptRules {
  return {
    limit: rules.limit,
    windowMs: rules.windowMs,
    marginMs: rules.safetyMarginMs,
    horizonMs: timing.horizonMs,
    baseHorizonMs: rules.horizonMs,
    leadMs: timing.leadMs,
    leaseMs: rules.leaseMs,
    memoryMs: rules.memoryMs,
    minShare: rules.batchMinShare,
    tolerance: FAIR_ROUNDING_TOLERANCE,
  };
}

/** A budget's keys in the script's KEYS order. */
export function scheduleScriptKeys(keys: OutboundBudgetKeys): string[] {
  const { slots, interactiveQueue, batchQueue, tickets, fairness, granted, deadlines, members, shares, lines, reaches } = keys;
  return [slots, interactiveQueue, batchQueue, tickets, fairness, granted, deadlines, members, shares, lines, reaches];
}

/**
 * What callers get while this replica keeps off the scheduler on purpose (Redis answers, too
 * slowly): not a Redis failure, so no other store changes its mode.
 */
export class SchedulerSuspended extends Error {
  constructor(reason: string) {
    super(`This replica keeps off the shared scheduler: ${reason}`);
    this.name = 'SchedulerSuspended';
  }
}

/** Who asks for a slot, and until when it would rather wait than be refused. */
export interface Ask {
  client: string;
  priority: Priority;
  /** The local time after which the caller would rather be refused than get a slot. */
  giveUpAt: number;
}

/** A slot the fleet's scheduler granted to this caller. */
export interface Reservation extends HeldSlot {
  /** The ticket the slot was granted to (the slot's member in the log). */
  readonly id: string;
  /** How long the last script's answer took to come back, as this process saw it. */
  readonly roundTripMs: number;
  readonly ask: Ask;
}

/** What a replica tells the scheduler besides its own tickets (on its way back from its own share). */
export interface ReturnNotes {
  /** Calls it sent on its own share: a name for each, and its offset from now (negative in the past). */
  carried?: ReadonlyArray<readonly [string, number]>;
  /** The members it last saw, [replica, share]: the fleet leaves room for those not back yet. */
  fleet?: ReadonlyArray<readonly [string, number]>;
}

/** Where the notes come from: they ride with the next call that reaches Redis, whichever it is. */
export interface ReturnNotesSource {
  /** The notes still to deliver, or undefined. */
  pending(): ReturnNotes | undefined;
  /** Redis took these notes (those `pending` gave for the call). */
  delivered(notes: ReturnNotes): void;
}

/** What one call asks of the script besides this replica's waiting tickets and cancels (never a clock: Redis's own is the only one). */
interface ScheduleBody {
  ticket?: { id: string; client: string; weight: number; level: 'i' | 'b'; maxWaitMs: number; front: boolean; replacing: string };
  leaving?: true;
}

export interface ScheduleReply {
  now: string;
  ticket?: { id: string; state: 'granted' | 'queued' | 'refused'; slot?: number; estimate?: number };
  grants: Array<[string, number]>;
  dispatchIn: number;
  lastSlot?: number;
  lease: number;
  share: number;
  members: number;
  lapsed: number;
  fleet: Array<[string, number, number]>;
  /** What this call granted up to (ms from now). */
  horizon: number;
  /** The longest horizon any member may grant with until this replica's lease ends (ms). */
  reach: number;
}

/** The fleet as the scheduler's last answer showed it, on this replica's side. */
export interface SchedulerView extends FleetView {
  /** The end of this replica's lease (local time). */
  leaseExpiresAt: number;
  members: ReadonlyArray<readonly [string, number]>;
  /** No member grants further ahead than this until the lease ends (ms). */
  reachMs: number;
}

interface Waiter {
  ask: Ask;
  grant(slotAt: number, roundTripMs: number): void;
  fail(error: unknown): void;
}

/**
 * The fleet-wide scheduler, on this replica's side. Every caller queues a ticket in Redis (one
 * script run: a caller alone gets its slot in the same round trip); the script grants free slots
 * of a short horizon to the waiting tickets of every replica, fairly and by priority, and each
 * replica collects the grants of its own tickets when it next calls the script, which it does when
 * the next slot enters the horizon (one timer for all its waiting callers). A granted caller
 * sleeps until its slot (SlotLimiter), placed on the local clock through RedisClock. How far
 * ahead slots are granted follows the round trip this replica measures (grantTiming): a slot is
 * never closer than its answer's way back, and the horizon leaves time to collect a grant. Every
 * call renews this replica's membership lease. Every Redis failure surfaces as RedisCallFailed: the
 * callers still waiting get it too, so that the failover can serve them on its own share.
 */
export class RedisOutboundRateLimiter extends SlotLimiter<Reservation> {
  readonly mode = 'shared';
  private readonly clock = new RedisClock();
  private readonly keyList: string[];
  private readonly membersKey: string;
  private readonly scriptRules: ScheduleScriptRules;
  private readonly waiters = new Map<string, Waiter>();
  /** Tickets and slots nobody will use, given back with the next call. */
  private readonly cancels: string[] = [];
  /** Slots whose call reached the wire late, [slot, ms past the late tolerance], moved with the next call. */
  private readonly wireMoves: Array<[string, number]> = [];
  private dispatchTimer?: unknown;
  /** When the script last said a slot enters the horizon (local time), for the dispatch timer. */
  private dispatchAt = Number.POSITIVE_INFINITY;
  /** The newest slot Redis told us about, on this process's monotonic clock. */
  private horizon: number | undefined;
  private view?: SchedulerView;
  private notes?: ReturnNotesSource;
  /** Set once this replica left the fleet: calls still made (stragglers of a shutdown) do not rejoin it. */
  private left = false;
  /** This replica's recent round trips to the scheduler: they set its grant timing. */
  readonly roundTrip = new RedisRoundTrip();
  /** How far ahead the last answer's grants reached (the fleet's longest live horizon). */
  private grantsReachMs?: number;
  /** Set while this replica keeps off the scheduler: no script runs (its lease lapses), callers get it. */
  private suspended?: SchedulerSuspended;
  /** Script runs sent and not yet answered (or failed): each may still renew the lease. */
  private readonly inFlight = new Set<Promise<ScriptRun>>();

  constructor(
    private readonly redis: RedisClient,
    keys: OutboundBudgetKeys,
    private readonly rules: SchedulerRules,
    /** This replica's name in the fleet's membership. */
    readonly replicaId: string,
    now: () => number = monotonicNow,
    wait: SlotWait = timerWait,
    private readonly timers: Timers = realTimers,
    private readonly lag: EventLoopLag = processEventLoopLag,
  ) {
    super(rules, now, wait);
    this.keyList = scheduleScriptKeys(keys);
    this.scriptRules = scheduleScriptRules(rules);
    this.membersKey = keys.members;
  }

  async acquire({ maxWaitMs, signal, client = ANONYMOUS_CLIENT, priority = 'interactive', readiness }: AcquireOptions): Promise<void> {
    signal?.throwIfAborted();
    const answer = await this.request({ client, priority, giveUpAt: this.now() + maxWaitMs }, signal);
    if (answer instanceof OutboundRateLimitRefusal) throw answer;
    await this.waitFor(answer, signal, readiness);
  }

  /** Lets the replica's way back from its own share ride with the next call (FailoverOutboundRateLimiter). */
  carryNotesFrom(source: ReturnNotesSource): void {
    this.notes = source;
  }

  /**
   * A slot for `ask` (waiting in the queue as long as it takes, up to its deadline), or the
   * scheduler's refusal: an answer, Redis is fine. Throws RedisCallFailed when Redis fails on the
   * way, and the abort reason when the caller goes away (its ticket is given back).
   */
  async request(
    ask: Ask,
    signal?: AbortSignal,
    retry?: { front: true; replacing: string },
  ): Promise<Reservation | OutboundRateLimitRefusal> {
    const maxWaitMs = remainingWaitMs(ask.giveUpAt, this.now());
    const { reply, ranAt, roundTripMs } = await this.run({
      ticket: {
        id: randomUUID(),
        client: ask.client,
        weight: this.rules.weightOf(ask.client),
        level: ask.priority === 'batch' ? 'b' : 'i',
        maxWaitMs,
        front: retry !== undefined,
        replacing: retry?.replacing ?? '',
      },
    });
    const ticket = reply.ticket!;
    if (ticket.state === 'refused') return this.refusal(ask, ticket.estimate ?? maxWaitMs);
    if (ticket.state === 'granted') {
      return { id: ticket.id, slotAt: ranAt + ticket.slot!, giveUpAt: ask.giveUpAt, roundTripMs, ask };
    }
    return this.awaitGrant(ticket.id, ask, ticket.estimate ?? maxWaitMs, signal);
  }

  /** Renews the lease, gives back what waits to be given back, and collects grants (the heartbeat). */
  async renew(): Promise<void> {
    await this.run({});
  }

  /**
   * Leaves the fleet (graceful shutdown): the lease ends without a lapse, so nobody leaves room for
   * this replica; calls its last callers still make do not bring it back.
   */
  async leave(): Promise<void> {
    this.timers.clearTimeout(this.dispatchTimer);
    this.left = true;
    await this.run({ leaving: true });
  }

  /**
   * Times one round trip to the node that holds the budget, without touching the lease or the log
   * (while this replica keeps off a slow scheduler, the round trip still tells when to return).
   */
  async measureRoundTrip(): Promise<number> {
    const sentAt = this.now();
    const ownLag = this.lag.watch();
    try {
      await this.redis.pttl(this.membersKey);
    } catch (error) {
      throw error instanceof RedisCallFailed ? error : new RedisCallFailed(error);
    }
    const roundTripMs = this.now() - sentAt;
    this.roundTrip.record(roundTripMs, ownLag());
    return roundTripMs;
  }

  /**
   * Stops running the script until `resume`, so that this replica's lease lapses and the fleet
   * stops counting on it: every caller waiting for a grant, and every later one, gets the
   * suspension. Their tickets go back with the first call after `resume` (or leave by their
   * deadlines, or with the lapse). Slots already granted stand. Only `leave` and
   * `measureRoundTrip` still reach Redis.
   */
  suspend(reason: string): void {
    this.suspended = new SchedulerSuspended(reason);
    this.timers.clearTimeout(this.dispatchTimer);
    this.dispatchTimer = undefined;
    for (const [id, waiter] of [...this.waiters]) {
      this.cancels.push(id);
      waiter.fail(this.suspended);
    }
  }

  resume(): void {
    this.suspended = undefined;
  }

  /**
   * Resolves once every script run sent before this call has been answered or has failed (within
   * the command timeout). A run on its way when the replica left the scheduler renews the lease when
   * it lands: the fleet view is final only after it.
   */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /** The newest slot anyone in the fleet was granted, as far as this replica last heard. */
  lastKnownSlot(): number | undefined {
    return this.horizon;
  }

  /**
   * The fleet as the scheduler's last answer showed it, with the end of this replica's lease (local time) and the
   * share it may send on its own when cut off; undefined before the first answer.
   */
  override fleetView(): SchedulerView | undefined {
    return this.view;
  }

  /** What each client waiting now would get per second, if every one of them kept asking. */
  override async fairShares(): Promise<FairShare[]> {
    const fields = await this.redis.hgetall(this.keyList[4]!).catch(() => ({}) as Record<string, string>);
    const waiting: Array<{ client: string; priority: Priority; weight: number }> = [];
    for (const field of Object.keys(fields)) {
      // h:<level>:<client>: the first ticket of the client's line, while it has one.
      const match = /^h:([ib]):(.*)$/.exec(field);
      if (!match) continue;
      const client = match[2]!;
      waiting.push({ client, priority: match[1] === 'b' ? 'batch' : 'interactive', weight: this.rules.weightOf(client) });
    }
    return fairShares(waiting, this.rules);
  }

  protected async replace(slot: Reservation, signal?: AbortSignal): Promise<Reservation> {
    // No wait left: the old slot goes back with the next call, and the caller has its refusal now.
    if (remainingWaitMs(slot.ask.giveUpAt, this.now()) <= 0) {
      this.giveBack(slot.id);
      throw this.refusal(slot.ask, spacingMs(this.rules));
    }
    const answer = await this.request(slot.ask, signal, { front: true, replacing: slot.id });
    if (answer instanceof OutboundRateLimitRefusal) throw answer;
    return answer;
  }

  protected release(slot: Reservation): void {
    this.giveBack(slot.id);
  }

  /** Moved at once: the slot a window after it is granted about a window from now, by whichever replica. */
  protected movedToWire(slot: Reservation, overrunMs: number): void {
    this.wireMoves.push([slot.id, overrunMs]);
    this.run({}).catch(() => undefined);
  }

  private refusal(ask: Ask, estimate: number): OutboundRateLimitRefusal {
    return new OutboundRateLimitRefusal(estimate, `client ${ask.client}'s share of the fleet's vendor budget (${ask.priority})`);
  }

  private awaitGrant(id: string, ask: Ask, estimate: number, signal?: AbortSignal): Promise<Reservation | OutboundRateLimitRefusal> {
    if (this.suspended) {
      // Queued by a call that was on its way when the suspension came: nobody will collect it.
      this.cancels.push(id);
      return Promise.reject(this.suspended);
    }
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.waiters.delete(id);
        this.timers.clearTimeout(deadline);
        signal?.removeEventListener('abort', onAbort);
        if (this.waiters.size === 0) {
          this.timers.clearTimeout(this.dispatchTimer);
          this.dispatchTimer = undefined;
        }
      };
      const onAbort = (): void => {
        done();
        this.giveBack(id);
        reject(abortError(signal!));
      };
      const deadline = this.timers.setTimeout(() => {
        done();
        this.giveBack(id);
        resolve(this.refusal(ask, estimate));
      }, Math.max(0, ask.giveUpAt - this.now()));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.set(id, {
        ask,
        grant: (slotAt, roundTripMs) => {
          done();
          resolve({ id, slotAt, giveUpAt: ask.giveUpAt, roundTripMs, ask });
        },
        fail: (error) => {
          done();
          reject(error);
        },
      });
      this.armDispatch();
    });
  }

  /** Gives a ticket or slot back at once (best effort; otherwise with the next call, or its deadline). */
  private giveBack(id: string): void {
    this.cancels.push(id);
    this.run({}).catch(() => undefined);
  }

  /** One run of the script: this replica's tickets, cancels and lease go with every one. */
  private async run(body: ScheduleBody): Promise<ScriptRun> {
    if (this.suspended && !body.leaving) throw this.suspended;
    const running = this.runScript(body);
    this.inFlight.add(running);
    try {
      return await running;
    } finally {
      this.inFlight.delete(running);
    }
  }

  private async runScript(body: ScheduleBody): Promise<ScriptRun> {
    const cancel = this.cancels.splice(0);
    const late = this.wireMoves.length > 0 ? { late: this.wireMoves.splice(0) } : {};
    const notes = this.notes?.pending();
    const rules: ScheduleScriptRules = { ...this.scriptRules, ...this.timing() };
    const leaving = this.left || body.leaving ? { leaving: true } : {};
    const request = { replica: this.replicaId, rules, waiting: [...this.waiters.keys()], cancel, ...late, ...notes, ...body, ...leaving };
    const sentAt = this.now();
    const ownLag = this.lag.watch();
    let reply: ScheduleReply;
    try {
      reply = parseScheduleReply(await SCHEDULE_SCRIPT.run(this.redis, this.keyList, [JSON.stringify(request)]));
    } catch (error) {
      const failure = error instanceof RedisCallFailed ? error : new RedisCallFailed(error);
      this.failWaiters(failure);
      throw failure;
    }
    if (notes) this.notes?.delivered(notes);
    const answeredAt = this.now();
    const serverNow = Number(reply.now);
    this.clock.observe(serverNow, sentAt, answeredAt);
    const ranAt = this.clock.toLocal(serverNow);
    const roundTripMs = answeredAt - sentAt;
    this.roundTrip.record(roundTripMs, ownLag());
    if (reply.lastSlot !== undefined) this.horizon = ranAt + reply.lastSlot;
    this.grantsReachMs = reply.horizon;
    this.view = {
      reachMs: reply.reach,
      active: reply.members - reply.lapsed,
      lapsed: reply.lapsed,
      share: reply.share,
      leaseExpiresAt: ranAt + reply.lease,
      members: reply.fleet.map(([id, share]) => [id, share] as const),
      lapsedMembers: reply.fleet.filter(([, , expiry]) => expiry <= 0).map(([id]) => id),
    };
    for (const [id, offset] of reply.grants) {
      const waiter = this.waiters.get(id);
      if (waiter) waiter.grant(ranAt + offset, roundTripMs);
      // Its caller gave up meanwhile: nobody will use the slot.
      else this.cancels.push(id);
    }
    this.dispatchAt = reply.dispatchIn >= 0 ? ranAt + reply.dispatchIn : Number.POSITIVE_INFINITY;
    this.armDispatch();
    return { reply, ranAt, roundTripMs };
  }

  /**
   * While callers wait, call the script when the next slot enters the horizon, and at least once a
   * spacing (another replica may have granted one of ours, or dropped a dead ticket ahead of them).
   */
  private armDispatch(): void {
    if (this.dispatchTimer !== undefined || this.waiters.size === 0) return;
    const delay = Math.min(Math.max(0, this.dispatchAt - this.now()), spacingMs(this.rules));
    this.dispatchTimer = this.timers.setTimeout(() => {
      this.dispatchTimer = undefined;
      this.run({}).catch(() => undefined);
    }, delay);
  }

  /** How far ahead to ask for, from the round trips seen so far. */
  timing(): GrantTiming {
    return grantTiming(this.rules, this.roundTrip.highMs());
  }

  /** How far ahead the scheduler granted in its last answer; undefined before the first. */
  grantHorizonMs(): number | undefined {
    return this.grantsReachMs;
  }

  private failWaiters(error: RedisCallFailed): void {
    const waiting = [...this.waiters.values()];
    for (const waiter of waiting) waiter.fail(error);
  }
}

/** A script run's answer, when it ran on Redis's clock (as local time), and its round trip. */
interface ScriptRun {
  reply: ScheduleReply;
  ranAt: number;
  roundTripMs: number;
}

/** The script's JSON answer, checked for the fields every caller relies on; RedisCallFailed otherwise. */
export function parseScheduleReply(raw: unknown): ScheduleReply {
  let reply: unknown;
  try {
    reply = typeof raw === 'string' ? JSON.parse(raw) : undefined;
  } catch {
    reply = undefined;
  }
  const value = reply as Partial<ScheduleReply> | undefined;
  if (
    !value ||
    typeof value.now !== 'string' ||
    !Number.isFinite(Number(value.now)) ||
    typeof value.dispatchIn !== 'number' ||
    typeof value.reach !== 'number'
  ) {
    throw new RedisCallFailed(new Error('the schedule-outbound script answered in an unexpected shape'));
  }
  // cjson writes an empty list as {}.
  const list = <T>(items: unknown): T[] => (Array.isArray(items) ? (items as T[]) : []);
  return { ...(value as ScheduleReply), grants: list(value.grants), fleet: list(value.fleet) };
}
