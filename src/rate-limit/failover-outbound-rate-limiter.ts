import { Logger, type BeforeApplicationShutdown, type LoggerService } from '@nestjs/common';
import { RedisCallFailed } from '../redis/redis-call-failed.js';
import type { RedisDownPolicy, SharedStoreMode } from '../redis/redis-down-policy.js';
import type { LocalOutboundRateLimiter } from './local-outbound-rate-limiter.js';
import { ANONYMOUS_CLIENT } from './local-outbound-rate-limiter.js';
import {
  OutboundRateLimiter,
  OutboundRateLimitRefusal,
  type AcquireOptions,
  type FairShare,
  type BudgetModeChange,
  type FleetView,
  type SchedulerTiming,
  type SlotReadiness,
} from './outbound-rate-limiter.js';
import { SchedulerSuspended, type Ask as SharedAsk, type RedisOutboundRateLimiter, type ReturnNotes } from './redis-outbound-rate-limiter.js';
import { monotonicNow, realTimers, remainingWaitMs, type Timers } from './slot-wait.js';
import { RECOVERY_VERDICT_SAMPLES } from './redis-round-trip.js';

/** A caller's ask, and what it needs ready at its slot (local or shared). */
interface Ask extends SharedAsk {
  readiness?: SlotReadiness;
}

/** What a refused SharedStoreUnavailable names. */
const SHARED_BUDGET = 'the shared vendor call budget';
const SLOW_SHARED_BUDGET = 'the shared vendor call budget (Redis answers too slowly to schedule through)';

export interface FailoverRules {
  /** How far ahead of now the scheduler grants slots at least (the reach its answers tell is used when known). */
  readonly horizonMs: number;
  /** RATE_LIMIT_SLOW_REDIS_MS: past this typical round trip, Redis counts as down for the budget. */
  readonly slowRoundTripMs: number;
  /** The fleet's window plus margin: how long a call counts against the calls after it. */
  readonly spanMs: number;
  /** How often the membership lease is renewed while nothing else calls Redis. */
  readonly heartbeatMs: number;
}

/** What every limiter counts of its slots, summed over the shared one and the local shares. */
const SLOT_COUNTS = ['lateSlots', 'unreadySlots', 'lateWires'] as const;
type SlotCount = (typeof SLOT_COUNTS)[number];

/**
 * The limiter every vendor call goes through when Redis is configured: the fleet's scheduler
 * while Redis answers, this replica's own share in process (or 503) while it does not, as
 * RedisDownPolicy decides for every shared store, and back again by itself.
 *
 * The cap holds through the hand-overs. Leaving Redis, this replica sends nothing on its own share
 * before its lease has surely lapsed and the fleet's calls granted until then have left every
 * window (local slots follow the lease's end plus the grant horizon by one whole window; the lease
 * as the last script run to land left it, since runs still on their way renew it): the others
 * subtract its share from the shared budget from its lease's end on. Its share is the
 * budget split over the fleet as Redis last counted it. Coming back, callers still waiting for a
 * local slot take a shared one instead, and the first call to reach Redis writes this replica's
 * recent local calls into the log and re-asserts the members it last saw, so that the fleet keeps
 * leaving room for those still on their own (also when Redis lost its data meanwhile).
 */
export class FailoverOutboundRateLimiter extends OutboundRateLimiter implements BeforeApplicationShutdown {
  private local: LocalOutboundRateLimiter;
  /** What the local shares of earlier outages counted (each outage starts a new one). */
  private readonly earlier: Record<SlotCount, number> = { lateSlots: 0, unreadySlots: 0, lateWires: 0 };
  /** True while this replica's local releases are not yet in the shared log (also from start-up). */
  private carryOverPending: boolean;
  /** True from a loss of Redis until the members this replica saw are re-asserted. */
  private fleetPending = false;
  /** True once this replica has served calls on its own share: its return is logged. */
  private servedAlone = false;
  /** When the last call on its own share went, and when each set of notes was taken. */
  private lastLocalCall = Number.NEGATIVE_INFINITY;
  private readonly notesTakenAt = new WeakMap<ReturnNotes, number>();
  private ownLapses = 0;
  /** Aborted when the shared log takes over: local slots still waited for are handed back. */
  private localEpoch = new AbortController();
  /** Settles once the script runs on their way at the last change to the own share have landed. */
  private localOpens: Promise<void> = Promise.resolve();
  private heartbeat: unknown;
  /** True while Redis answers, but too slowly to schedule through: the budget is as if Redis were down. */
  private slow = false;
  /** The budget's mode as last told to listeners. */
  private told: SharedStoreMode;
  private readonly modeListeners = new Set<(change: BudgetModeChange) => void>();

  constructor(
    private readonly shared: RedisOutboundRateLimiter,
    /** This replica's share of the budget for a fleet of `size` members. */
    private readonly localShare: (size: number) => LocalOutboundRateLimiter,
    private readonly policy: RedisDownPolicy,
    private readonly rules: FailoverRules,
    private readonly logger: LoggerService = new Logger('OutboundRateLimiter'),
    private readonly timers: Timers = realTimers,
  ) {
    super();
    this.local = localShare(policy.assumedReplicas);
    this.carryOverPending = policy.fallback === 'local';
    this.told = this.mode;
    policy.onModeChange((mode) => this.budgetModeMayHaveChanged(mode === 'shared' ? 'recovered' : 'unreachable'));
    shared.carryNotesFrom({ pending: () => this.pendingNotes(), delivered: (notes) => this.notesDelivered(notes) });
    this.heartbeat = this.beat();
  }

  get mode(): SharedStoreMode {
    const mode = this.policy.mode;
    return mode === 'shared' && this.slow ? this.policy.fallback : mode;
  }

  override onModeChange(listener: (change: BudgetModeChange) => void): void {
    this.modeListeners.add(listener);
  }

  override lateSlots(): number {
    return this.counted('lateSlots');
  }

  override unreadySlots(): number {
    return this.counted('unreadySlots');
  }

  override lateWires(): number {
    return this.counted('lateWires');
  }

  /** The shared limiter's count, and every local share's since start-up. */
  private counted(count: SlotCount): number {
    return this.shared[count]() + this.earlier[count] + this.local[count]();
  }

  override fairShares(): Promise<FairShare[]> {
    return this.mode === 'shared' ? this.shared.fairShares() : this.local.fairShares();
  }

  override fleetView(): FleetView | undefined {
    return this.shared.fleetView();
  }

  override leaseLapses(): number {
    return this.ownLapses;
  }

  override schedulerTiming(): SchedulerTiming | undefined {
    const roundTripMs = this.shared.roundTrip.typicalMs();
    const horizonMs = this.shared.grantHorizonMs();
    return roundTripMs === undefined || horizonMs === undefined ? undefined : { roundTripMs, horizonMs };
  }

  async acquire({ maxWaitMs, signal, client = ANONYMOUS_CLIENT, priority = 'interactive', readiness }: AcquireOptions): Promise<void> {
    signal?.throwIfAborted();
    await this.acquireBefore({ client, priority, giveUpAt: monotonicNow() + maxWaitMs, readiness }, signal);
  }

  /**
   * Leaves the fleet on a graceful shutdown, so nobody leaves room for this replica afterwards
   * (also off a slow scheduler: its recent calls of its own ride along into the log).
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.timers.clearTimeout(this.heartbeat);
    if (this.policy.mode === 'shared') await this.shared.leave().catch(() => undefined);
  }

  private async acquireBefore(
    ask: Ask,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (this.slow) return this.policy.withoutRedis(SLOW_SHARED_BUDGET, () => this.acquireLocally(ask, signal));
    let answer;
    try {
      answer = await this.policy.run(SHARED_BUDGET, () => this.shared.request(ask, signal), () => undefined);
    } catch (error) {
      // Redis turned slow while this caller waited for its grant.
      if (error instanceof SchedulerSuspended) return this.acquireBefore(ask, signal);
      throw error;
    }
    this.checkRoundTrip();
    if (answer === undefined) return this.acquireLocally(ask, signal);
    if (answer instanceof OutboundRateLimitRefusal) throw answer;
    try {
      await this.shared.waitFor(answer, signal, ask.readiness);
    } catch (error) {
      // Redis went away, or turned slow, while a caller that woke too late was trading its slot for a new one.
      if (error instanceof SchedulerSuspended) return this.acquireBefore(ask, signal);
      if (!(error instanceof RedisCallFailed)) throw error;
      this.policy.callFailed(SHARED_BUDGET, error);
      return this.policy.withoutRedis(SHARED_BUDGET, () => this.acquireLocally(ask, signal));
    }
  }

  private async acquireLocally(
    ask: Ask,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const epoch = this.localEpoch.signal;
    try {
      await this.localOpens;
      await this.local.acquire({
        maxWaitMs: remainingWaitMs(ask.giveUpAt, monotonicNow()),
        signal: signal ? AbortSignal.any([signal, epoch]) : epoch,
        client: ask.client,
        priority: ask.priority,
        readiness: ask.readiness,
      });
      this.servedAlone = true;
      this.lastLocalCall = monotonicNow();
    } catch (error) {
      if (!epoch.aborted || signal?.aborted) throw error;
      // Redis came back while this caller waited: its local slot could clash with the shared
      // log's, so it gave that slot back and takes a shared one, within the wait it has left.
      return this.acquireBefore(ask, signal);
    }
  }

  /**
   * Renews the lease whenever the connection is up, even in the pause after a failed call; off a
   * slow scheduler, only times the round trip (the lease is left to lapse).
   */
  private beat(): unknown {
    const timer = this.timers.setTimeout(() => {
      void this.policy
        .probe(SHARED_BUDGET, () => (this.slow ? this.shared.measureRoundTrip() : this.shared.renew()))
        .then(() => this.checkRoundTrip())
        .catch(() => false)
        .finally(() => {
          this.heartbeat = this.beat();
        });
    }, this.rules.heartbeatMs);
    (timer as { unref?: () => void }).unref?.();
    return timer;
  }

  private pendingNotes(): ReturnNotes | undefined {
    if (!this.carryOverPending && !this.fleetPending) return undefined;
    const notes: ReturnNotes = {
      ...(this.carryOverPending && { carried: this.carriedCalls() }),
      ...(this.fleetPending && { fleet: this.shared.fleetView()?.members ?? [] }),
    };
    this.notesTakenAt.set(notes, monotonicNow());
    return notes;
  }

  /** This replica's recent local calls, each named by when it went (the same name however often it is sent). */
  private carriedCalls(): Array<readonly [string, number]> {
    return this.local.recentReleases().map(({ at, offsetMs }) => [String(at), offsetMs] as const);
  }

  private notesDelivered(notes: ReturnNotes): void {
    // Calls made while these notes were on their way go with the next ones (carried calls count once).
    if ((this.notesTakenAt.get(notes) ?? Number.NEGATIVE_INFINITY) >= this.lastLocalCall) this.carryOverPending = false;
    if (notes.fleet) this.fleetPending = false;
    if (this.servedAlone) {
      this.servedAlone = false;
      this.logger.log(
        'Outbound limiter hand-over: this replica is back on the shared scheduler with its own calls in the ' +
          'log; the fleet leaves room for the members still on their own share',
      );
    }
  }

  /**
   * Off the scheduler when its typical round trip passes RATE_LIMIT_SLOW_REDIS_MS, back on once
   * it is under half of that (the gap keeps a round trip near the line from flapping the mode).
   */
  private checkRoundTrip(): void {
    const { roundTrip } = this.shared;
    const thresholdMs = this.rules.slowRoundTripMs;
    if (!this.slow && this.policy.mode === 'shared' && roundTrip.isSlow(thresholdMs)) {
      const typical = Math.round(roundTrip.typicalMs()!);
      this.slow = true;
      roundTrip.resetVerdict();
      this.shared.suspend(`Redis's round trip is ${typical} ms`);
      this.logger.warn(
        `Outbound limiter mode: ${this.mode} (slow: the typical Redis round trip is ${typical} ms, over ` +
          `RATE_LIMIT_SLOW_REDIS_MS=${thresholdMs}); the vendor budget is ` +
          (this.mode === 'local' ? "this replica's own share" : 'refused with 503') +
          ` until the round trip is back under ${Math.floor(thresholdMs / 2)} ms; client quotas and Idempotency-Keys stay in Redis`,
      );
      this.budgetModeMayHaveChanged('slow');
    } else if (this.slow && roundTrip.hasRecovered(thresholdMs)) {
      const typical = Math.round(roundTrip.typicalMs(RECOVERY_VERDICT_SAMPLES)!);
      this.slow = false;
      roundTrip.resetVerdict();
      this.shared.resume();
      if (this.policy.mode === 'shared') this.logger.log(`Outbound limiter mode: shared (the typical Redis round trip is back to ${typical} ms)`);
      this.budgetModeMayHaveChanged('recovered');
    }
  }

  /** Tells the listeners, and sets the hand-over up, when the budget's mode is no longer the one last told. */
  private budgetModeMayHaveChanged(reason: BudgetModeChange['reason']): void {
    const mode = this.mode;
    if (mode === this.told) return;
    this.told = mode;
    this.modeChanged(mode);
    for (const listener of this.modeListeners) listener({ mode, reason });
  }

  /**
   * When the fleet's shared calls end, as far as this replica knows: they were granted at most a
   * reach past its lease. Nothing of its own goes before they have left every window of the vendor's.
   */
  private sharedEnd(): number {
    const view = this.shared.fleetView();
    const lastShared = this.shared.lastKnownSlot() ?? Number.NEGATIVE_INFINITY;
    if (!view) return lastShared;
    return Math.max(lastShared, view.leaseExpiresAt + Math.max(view.reachMs, this.rules.horizonMs));
  }

  private modeChanged(mode: SharedStoreMode): void {
    if (mode === 'shared') {
      this.localEpoch.abort();
      this.localEpoch = new AbortController();
      return;
    }
    const view = this.shared.fleetView();
    for (const count of SLOT_COUNTS) this.earlier[count] += this.local[count]();
    // Client quotas fall back to their share of the same fleet.
    if (view) this.policy.fleetCounted(view.active + view.lapsed);
    const local = (this.local = this.localShare(this.policy.fleetSize));
    // A script run still on its way (Redis turned slow under it) renews the lease when it lands:
    // the own share opens once every one has (every local call waits for this), from the lease they leave.
    this.localOpens = this.shared.settled().then(() => local.notBefore(this.sharedEnd() + this.rules.spanMs));
    if (view) this.ownLapses++;
    this.carryOverPending = mode === 'local';
    this.fleetPending = view !== undefined;
  }
}
