import { FairQueue, type FairTicket } from './fair-queue.js';
import { fairShares } from './fair-shares.js';
import {
  OutboundRateLimiter,
  OutboundRateLimitRefusal,
  type AcquireOptions,
  type FairShare,
  type SlotReadiness,
} from './outbound-rate-limiter.js';
import { lateToleranceMs, nextSlot, spacingMs, watchWire, type SlotRules } from './slot-schedule.js';
import { abortError, monotonicNow, realTimers, TIMER_GRANULARITY_MS, type Timers } from './slot-wait.js';
import { DEFAULT_BATCH_MIN_SHARE, type Priority } from './rate-limit.settings.js';

/** The budget of one process, and how it is shared between the clients waiting for it. */
export interface LocalBudgetRules extends SlotRules {
  /** The share of slots batch work gets at least while interactive work waits too (default: RATE_LIMIT_BATCH_MIN_SHARE's). */
  readonly batchMinShare?: number;
  /** A client's weight (default: 1 for every client). */
  weightOf?(client: string): number;
  /** What a refusal says was spent (default: this replica's vendor budget). */
  readonly shareName?: string;
}

/** A call made without a client (in-process tests, tools): one client of its own. */
export const ANONYMOUS_CLIENT = '-';

/** A caller not ready at its slot is asked again this much later (the slot stays free meanwhile). */
const UNREADY_RETRY_MS = 5;

interface Waiter {
  /** Its place in the queue (a new one when its slot is traded). */
  ticket?: FairTicket<Waiter>;
  readiness?: SlotReadiness;
  resolve(): void;
  /** Removes the caller's deadline timer and abort listener once it is served or gives up. */
  settle(): void;
}

/**
 * The limiter for one process: a sliding log of release times on the monotonic clock, and a fair
 * queue in front of it (FairQueue). A caller that finds no one waiting and a slot free goes at
 * once; otherwise it queues, and each slot is given to the next ticket in fair order when it
 * comes (just in time, so a client that arrives later with less service is served before a
 * flooder's queued callers). A caller whose slot is further away than it may wait is refused at
 * once, without taking a slot. Safe for a single replica only; the fleet shares the Redis scheduler.
 */
export class LocalOutboundRateLimiter extends OutboundRateLimiter {
  readonly mode = 'local';
  /** Reserved release times, ascending. Entries that can no longer constrain a slot are pruned. */
  private readonly releases: number[] = [];
  /** No local slot before this (set when taking over from the fleet's scheduler). */
  private notBeforeTime = Number.NEGATIVE_INFINITY;
  private readonly queue: FairQueue<Waiter>;
  private readonly rules: Required<LocalBudgetRules>;
  private timer?: ReturnType<Timers['setTimeout']>;
  /** When the armed timer should have fired: a dispatch much later than that counts as late. */
  private timerDue = 0;
  private lateDispatches = 0;
  private unreadyDispatches = 0;
  private lateWireCount = 0;
  /** No dispatch before this: the next caller was not ready at its slot. */
  private retryAt = Number.NEGATIVE_INFINITY;

  constructor(
    rules: LocalBudgetRules,
    private readonly now: () => number = monotonicNow,
    private readonly timers: Timers = realTimers,
  ) {
    super();
    this.rules = { batchMinShare: DEFAULT_BATCH_MIN_SHARE, weightOf: () => 1, shareName: "this replica's vendor budget", ...rules };
    this.queue = new FairQueue(this.rules.batchMinShare);
  }

  override lateSlots(): number {
    return this.lateDispatches;
  }

  override unreadySlots(): number {
    return this.unreadyDispatches;
  }

  override lateWires(): number {
    return this.lateWireCount;
  }

  override fairShares(): Promise<FairShare[]> {
    const waiting = this.queue.waitingClients().map((entry) => ({ ...entry, weight: this.rules.weightOf(entry.client) }));
    return Promise.resolve(fairShares(waiting, this.rules));
  }

  acquire({ maxWaitMs, signal, client = ANONYMOUS_CLIENT, priority = 'interactive', readiness }: AcquireOptions): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const now = this.now();
    this.prune(now);
    const slot = this.nextFreeSlot(now);
    const request = { client, weight: this.rules.weightOf(client), priority };
    if (this.queue.size === 0 && slot <= now && (readiness?.ready() ?? true)) {
      this.queue.servedAtOnce(request);
      // Its slot is now: told like any other, so the call is timed from its slot to the wire.
      readiness?.expect(now);
      this.release(now, readiness);
      return Promise.resolve();
    }
    const estimate = slot - now + this.queue.slotsBefore(request) * spacingMs(this.rules);
    if (estimate > maxWaitMs) return Promise.reject(this.refusal(estimate, client, priority));
    readiness?.expect(now + estimate);
    return new Promise<void>((resolve, reject) => {
      const giveUp = (error: unknown): void => {
        if (waiter.ticket && this.queue.remove(waiter.ticket)) {
          waiter.settle();
          reject(error);
          this.disarmWhenIdle();
        }
      };
      const onAbort = (): void => giveUp(abortError(signal!));
      // A slot due exactly at the deadline is still the caller's: the deadline fires just after it.
      const deadline = this.timers.setTimeout(
        () => giveUp(this.refusal(estimate, client, priority)),
        maxWaitMs + TIMER_GRANULARITY_MS,
      );
      const waiter: Waiter = {
        readiness,
        resolve,
        settle: () => {
          this.timers.clearTimeout(deadline);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      waiter.ticket = this.queue.push(request, waiter);
      this.arm(now);
    });
  }

  /**
   * No local slot before `time`. Taking over from the fleet's scheduler, the failover puts it one
   * whole window after the last of the fleet's calls that may still go out: no window then holds
   * both shared and local calls, and the cap holds through the hand-over.
   */
  notBefore(time: number): void {
    this.notBeforeTime = Math.max(this.notBeforeTime, time);
  }

  /**
   * The releases that can still share a window with a new call: when each went (on this clock, the
   * same number every time it is asked, so it can name the call) and its offset from now (negative
   * in the past). What the shared log must learn when it takes over again. A call moved to where
   * it reached the wire is named anew: the log may count it twice, never miss it.
   */
  recentReleases(): Array<{ at: number; offsetMs: number }> {
    const now = this.now();
    this.prune(now);
    return this.releases.map((at) => ({ at, offsetMs: at - now }));
  }

  private refusal(estimate: number, client: string, priority: Priority): OutboundRateLimitRefusal {
    return new OutboundRateLimitRefusal(estimate, `${this.rules.shareName} (client ${client}, ${priority})`);
  }

  private nextFreeSlot(now: number): number {
    return Math.max(nextSlot(this.releases, now, this.rules), this.notBeforeTime);
  }

  /** Wakes the dispatcher when the next slot comes (one timer for all waiting callers). */
  private arm(now: number): void {
    if (this.timer !== undefined || this.queue.size === 0) return;
    this.timerDue = Math.max(this.nextFreeSlot(now), this.retryAt);
    // Whole milliseconds, rounded up: a timer must not fire before its slot.
    this.timer = this.timers.setTimeout(() => this.dispatch(), Math.max(0, Math.ceil(this.timerDue - now)));
  }

  /** Nobody waits any more: no timer keeps the process up for a slot nobody needs. */
  private disarmWhenIdle(): void {
    if (this.queue.size > 0 || this.timer === undefined) return;
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Gives every slot that has come to the next ticket in fair order. */
  private dispatch(): void {
    this.timer = undefined;
    const now = this.now();
    // A stalled event loop: the slot goes out now (spaced from the last as always), not in a burst.
    if (now - this.timerDue > lateToleranceMs(this.rules)) this.lateDispatches++;
    this.prune(now);
    while (this.queue.size > 0 && this.nextFreeSlot(now) <= now) {
      const ticket = this.queue.shift()!;
      if (ticket.value.readiness && !ticket.value.readiness.ready()) {
        // It would reach the vendor late (no warm connection): the slot stays free, the caller
        // keeps the front of its line, and is asked again shortly, within its wait.
        this.unreadyDispatches++;
        const { client, priority } = ticket;
        ticket.value.ticket = this.queue.push({ client, priority, weight: this.rules.weightOf(client), front: true }, ticket.value);
        this.retryAt = now + UNREADY_RETRY_MS;
        break;
      }
      // Its slot is now, whatever it was told when it queued (it may have waited for a connection since).
      ticket.value.readiness?.expect(now);
      this.release(now, ticket.value.readiness);
      ticket.value.settle();
      ticket.value.resolve();
    }
    this.arm(now);
  }

  /** A call goes at `at`; should it reach the wire later than its slot allows, it counts from there. */
  private release(at: number, readiness: SlotReadiness | undefined): void {
    this.releases.push(at);
    readiness?.taken?.(watchWire(this.rules, at, (overrunMs) => this.moveToWire(at, overrunMs)));
  }

  private moveToWire(at: number, overrunMs: number): void {
    this.lateWireCount++;
    const index = this.releases.indexOf(at);
    // Pruned already: it can no longer share a window with a new call.
    if (index < 0) return;
    this.releases.splice(index, 1);
    const moved = at + overrunMs;
    let place = this.releases.length;
    while (place > 0 && this.releases[place - 1]! > moved) place--;
    this.releases.splice(place, 0, moved);
  }

  private prune(now: number): void {
    const horizon = now - this.rules.windowMs - this.rules.safetyMarginMs;
    let stale = 0;
    while (stale < this.releases.length && this.releases[stale]! < horizon) stale++;
    if (stale > 0) this.releases.splice(0, stale);
  }
}
