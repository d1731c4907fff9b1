import { performance } from 'node:perf_hooks';
import { Logger, type LoggerService } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { LocalOutboundRateLimiter } from './local-outbound-rate-limiter.js';
import { OutboundLimiterUnavailable } from './outbound-limiter-unavailable.js';
import {
  OutboundRateLimiter,
  OutboundRateLimitRefusal,
  type AcquireOptions,
} from './outbound-rate-limiter.js';
import type { RedisOutboundRateLimiter } from './redis-outbound-rate-limiter.js';
import { SharedLimiterUnavailable } from './shared-limiter-unavailable.js';

/** shared: the fleet-wide log in Redis; local: this replica's share in process; reject: 503. */
export type OutboundLimiterMode = 'shared' | 'local' | 'reject';

export interface RedisDownFallback {
  policy: 'local' | 'reject';
  /** This replica's share of the budget, used in `local` mode. */
  local: LocalOutboundRateLimiter;
}

/** After a failed Redis call on a live connection, how long to stay on the fallback before trying again. */
const PROBE_INTERVAL_MS = 1000;

/**
 * The limiter every vendor call goes through when Redis is configured: the shared limiter while
 * Redis answers, the RATE_LIMIT_ON_REDIS_DOWN fallback while it does not, and back again by
 * itself. Redis trouble never hangs a caller: the connection has no offline queue and commands
 * time out, so a failed reservation falls through to the fallback at once.
 *
 * Hand-overs keep the cap as well as one replica can see: entering local mode, local slots start
 * one whole window after the newest shared slot this replica heard of (the shared queue is still
 * draining on every replica); returning, callers still waiting for a local slot take a shared one
 * instead, and the first reservation writes this replica's recent local releases into the log.
 */
export class FailoverOutboundRateLimiter extends OutboundRateLimiter {
  private current: OutboundLimiterMode;
  private probeAfter = 0;
  /** True while this replica's local releases are not yet in the shared log (also from start-up). */
  private carryOverPending: boolean;
  /**
   * True once this replica has been on its in-process share (it lost Redis, or sent calls before
   * Redis was there): its return starts the shared log's hand-over.
   */
  private handoverPending = false;
  private readonly listeners = new Set<(mode: OutboundLimiterMode) => void>();
  /** Aborted when the shared log takes over: local slots still waited for are handed back. */
  private localEpoch = new AbortController();

  constructor(
    private readonly shared: RedisOutboundRateLimiter,
    private readonly redis: Redis,
    private readonly fallback: RedisDownFallback,
    private readonly logger: LoggerService = new Logger('OutboundRateLimiter'),
    private readonly now: () => number = () => performance.now(),
  ) {
    super();
    this.current = fallback.policy;
    this.carryOverPending = fallback.policy === 'local';
    redis.on('ready', () => this.switchTo('shared', 'the Redis connection is ready'));
    redis.on('close', () => {
      // ioredis marks a deliberate quit (shutdown) as 'end' right after 'close': not an outage.
      setImmediate(() => {
        if (redis.status !== 'end') this.fallBack('the Redis connection closed');
      });
    });
    if (redis.status === 'ready') this.current = 'shared';
  }

  get mode(): OutboundLimiterMode {
    return this.current;
  }

  onModeChange(listener: (mode: OutboundLimiterMode) => void): void {
    this.listeners.add(listener);
  }

  async acquire(options: AcquireOptions): Promise<void> {
    options.signal?.throwIfAborted();
    if (!this.sharedWorthTrying()) return this.acquireWithoutRedis(options);

    const startedAt = this.now();
    let reservation;
    try {
      const carried = this.carryOverPending ? this.fallback.local.recentOffsets() : [];
      reservation = await this.shared.reserve(options.maxWaitMs, carried, this.handoverPending);
    } catch (error) {
      if (error instanceof OutboundRateLimitRefusal) {
        // Redis answered (and recorded any carried releases): the shared log decides.
        this.backOnShared();
        throw error;
      }
      if (!(error instanceof SharedLimiterUnavailable)) throw error;
      this.fallBack(error.message);
      return this.acquireWithoutRedis(options);
    }
    this.backOnShared();
    try {
      await this.shared.waitFor(reservation, options.signal);
    } catch (error) {
      // Redis went away while a caller that woke too late was trading its slot for a new one.
      if (!(error instanceof SharedLimiterUnavailable)) throw error;
      this.fallBack(error.message);
      return this.acquireWithoutRedis({ ...options, maxWaitMs: Math.max(0, options.maxWaitMs - (this.now() - startedAt)) });
    }
  }

  override lateSlots(): number {
    return this.shared.lateSlots() + this.fallback.local.lateSlots();
  }

  private sharedWorthTrying(): boolean {
    if (this.current === 'shared') return true;
    return this.redis.status === 'ready' && this.now() >= this.probeAfter;
  }

  private async acquireWithoutRedis(options: AcquireOptions): Promise<void> {
    if (this.fallback.policy === 'reject') throw new OutboundLimiterUnavailable();
    const startedAt = this.now();
    const epoch = this.localEpoch.signal;
    try {
      await this.fallback.local.acquire({
        maxWaitMs: options.maxWaitMs,
        signal: options.signal ? AbortSignal.any([options.signal, epoch]) : epoch,
      });
      this.handoverPending = true;
    } catch (error) {
      if (!epoch.aborted || options.signal?.aborted) throw error;
      // Redis came back while this caller waited: its local slot could clash with the shared
      // log's, so it gave that slot back and takes a shared one, within the wait it has left.
      return this.acquire({ ...options, maxWaitMs: Math.max(0, options.maxWaitMs - (this.now() - startedAt)) });
    }
  }

  private backOnShared(): void {
    this.carryOverPending = false;
    if (this.handoverPending) {
      this.handoverPending = false;
      this.logger.log(
        'Outbound limiter hand-over: this replica is back on the shared log, which leaves room for ' +
          'replicas still on their own share for two windows',
      );
    }
    this.switchTo('shared', 'Redis answered');
  }

  private fallBack(reason: string): void {
    this.probeAfter = this.now() + PROBE_INTERVAL_MS;
    if (this.current !== 'shared') return;
    const lastSharedSlot = this.shared.lastKnownSlot();
    if (lastSharedSlot !== undefined) this.fallback.local.follow(lastSharedSlot);
    this.carryOverPending = this.fallback.policy === 'local';
    this.handoverPending = this.fallback.policy === 'local';
    this.switchTo(this.fallback.policy, reason);
  }

  private switchTo(mode: OutboundLimiterMode, reason: string): void {
    if (mode === this.current) return;
    this.current = mode;
    if (mode === 'shared') {
      this.localEpoch.abort();
      this.localEpoch = new AbortController();
    }
    const message = `Outbound limiter mode: ${mode} (${reason})`;
    if (mode === 'shared') this.logger.log(message);
    else this.logger.warn(`${message}; ${FALLBACK_EFFECT[mode]}`);
    this.listeners.forEach((listener) => listener(mode));
  }
}

const FALLBACK_EFFECT: Record<Exclude<OutboundLimiterMode, 'shared'>, string> = {
  local: "this replica keeps to its own share of the vendor budget until Redis is back",
  reject: 'vendor calls are refused with 503 until Redis is back',
};
