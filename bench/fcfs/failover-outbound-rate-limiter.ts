// The first-come-first-served limiter's src/rate-limit/failover-outbound-rate-limiter.ts as of a8dab26, kept as the baseline of
// npm run bench:fairness and npm run bench; only its imports differ (see bench/fcfs-gateway.ts).
import { Logger, type LoggerService } from '@nestjs/common';
import { RedisCallFailed } from '../../src/redis/redis-call-failed.js';
import type { RedisDownPolicy, SharedStoreMode } from '../../src/redis/redis-down-policy.js';
import type { LocalOutboundRateLimiter } from './local-outbound-rate-limiter.js';
import { OutboundRateLimiter, OutboundRateLimitRefusal, type AcquireOptions } from '../../src/rate-limit/outbound-rate-limiter.js';
import type { RedisOutboundRateLimiter, Reservation } from './redis-outbound-rate-limiter.js';
import { monotonicNow, remainingWaitMs } from '../../src/rate-limit/slot-wait.js';

/** What a refused SharedStoreUnavailable names. */
const SHARED_BUDGET = 'the shared vendor call budget';

/**
 * The limiter every vendor call goes through when Redis is configured: the shared limiter while
 * Redis answers, this replica's share in process (or 503) while it does not, as RedisDownPolicy
 * decides for every shared store, and back again by itself.
 *
 * Hand-overs keep the cap as well as one replica can see: entering local mode, local slots start
 * one whole window after the newest shared slot this replica heard of (the shared queue is still
 * draining on every replica); returning, callers still waiting for a local slot take a shared one
 * instead, and the first reservation writes this replica's recent local releases into the log.
 */
export class FailoverOutboundRateLimiter extends OutboundRateLimiter {
  /** True while this replica's local releases are not yet in the shared log (also from start-up). */
  private carryOverPending: boolean;
  /**
   * True once this replica has been on its in-process share (it lost Redis, or sent calls before
   * Redis was there): its return starts the shared log's hand-over.
   */
  private handoverPending = false;
  /** Aborted when the shared log takes over: local slots still waited for are handed back. */
  private localEpoch = new AbortController();

  constructor(
    private readonly shared: RedisOutboundRateLimiter,
    private readonly local: LocalOutboundRateLimiter,
    private readonly policy: RedisDownPolicy,
    private readonly logger: LoggerService = new Logger('OutboundRateLimiter'),
  ) {
    super();
    this.carryOverPending = policy.fallback === 'local';
    policy.onModeChange((mode) => this.modeChanged(mode));
  }

  get mode(): SharedStoreMode {
    return this.policy.mode;
  }

  override lateSlots(): number {
    return this.shared.lateSlots() + this.local.lateSlots();
  }

  async acquire({ maxWaitMs, signal }: AcquireOptions): Promise<void> {
    signal?.throwIfAborted();
    await this.acquireBefore(monotonicNow() + maxWaitMs, signal);
  }

  private async acquireBefore(giveUpAt: number, signal: AbortSignal | undefined): Promise<void> {
    const answer = await this.policy.run(SHARED_BUDGET, () => this.reserveShared(giveUpAt), () => undefined);
    if (answer === undefined) return this.acquireLocally(giveUpAt, signal);
    if (answer instanceof OutboundRateLimitRefusal) throw answer;
    try {
      await this.shared.waitFor(answer, signal);
    } catch (error) {
      // Redis went away while a caller that woke too late was trading its slot for a new one.
      if (!(error instanceof RedisCallFailed)) throw error;
      this.policy.callFailed(SHARED_BUDGET, error);
      return this.policy.withoutRedis(SHARED_BUDGET, () => this.acquireLocally(giveUpAt, signal));
    }
  }

  /** A slot from the shared log, or the log's refusal (an answer: Redis is fine). */
  private async reserveShared(giveUpAt: number): Promise<Reservation | OutboundRateLimitRefusal> {
    const carried = this.carryOverPending ? this.local.recentOffsets() : [];
    let answer: Reservation | OutboundRateLimitRefusal;
    try {
      answer = await this.shared.reserve(remainingWaitMs(giveUpAt, monotonicNow()), carried, this.handoverPending);
    } catch (error) {
      if (!(error instanceof OutboundRateLimitRefusal)) throw error;
      answer = error;
    }
    // Redis answered, and recorded any carried releases.
    this.carryOverPending = false;
    if (this.handoverPending) {
      this.handoverPending = false;
      this.logger.log(
        'Outbound limiter hand-over: this replica is back on the shared log, which leaves room for ' +
          'replicas still on their own share for two windows',
      );
    }
    return answer;
  }

  private async acquireLocally(giveUpAt: number, signal: AbortSignal | undefined): Promise<void> {
    const epoch = this.localEpoch.signal;
    try {
      await this.local.acquire({
        maxWaitMs: remainingWaitMs(giveUpAt, monotonicNow()),
        signal: signal ? AbortSignal.any([signal, epoch]) : epoch,
      });
      this.handoverPending = true;
    } catch (error) {
      if (!epoch.aborted || signal?.aborted) throw error;
      // Redis came back while this caller waited: its local slot could clash with the shared
      // log's, so it gave that slot back and takes a shared one, within the wait it has left.
      return this.acquireBefore(giveUpAt, signal);
    }
  }

  private modeChanged(mode: SharedStoreMode): void {
    if (mode === 'shared') {
      this.localEpoch.abort();
      this.localEpoch = new AbortController();
      return;
    }
    const lastSharedSlot = this.shared.lastKnownSlot();
    if (lastSharedSlot !== undefined) this.local.follow(lastSharedSlot);
    this.carryOverPending = mode === 'local';
    this.handoverPending = mode === 'local';
  }
}
