import { performance } from 'node:perf_hooks';
import { Logger, type LoggerService } from '@nestjs/common';
import type { RedisClient } from './redis-connection.js';
import { describeRedisFailure, RedisCallFailed } from './redis-call-failed.js';
import type { RedisDownSettings } from './redis.settings.js';
import { SharedStoreUnavailable } from './shared-store-unavailable.js';

/** shared: through Redis; local: this replica's own share, in process; reject: 503. */
export type SharedStoreMode = 'shared' | 'local' | 'reject';

/** After a failed Redis call on a live connection, how long to stay on the fallback before trying again. */
const PROBE_INTERVAL_MS = 1000;

const FALLBACK_EFFECT: Record<Exclude<SharedStoreMode, 'shared'>, string> = {
  local:
    'this replica keeps to its own share of the vendor budget and of each client quota, and holds ' +
    'Idempotency-Keys in process, until Redis is back',
  reject: 'vendor calls, client quotas and Idempotency-Keys are refused with 503 until Redis is back',
};

/**
 * The one answer to "Redis is down" for every shared store (the outbound limiter, client quotas,
 * idempotency keys), as rate-limiter-flexible's stores degrade through one insurance limiter:
 * each store gives `run` its Redis call and its in-process fallback, and this policy decides which
 * one runs (RATE_LIMIT_ON_REDIS_DOWN: the fallback, or 503). It knows the current mode, watches
 * the connection (ioredis reconnects by itself), stops trying a Redis that failed a call for a
 * second, and logs each change of mode once.
 *
 * Redis trouble never hangs a caller: the connection has no offline queue and commands time out,
 * so a failed call falls through to the fallback at once.
 */
export class RedisDownPolicy {
  private current: SharedStoreMode;
  private probeAfter = 0;
  private counted: number | undefined;
  /** Failures seen so far: a call's answer is news of Redis only if no failure was seen while it was on its way. */
  private failures = 0;
  private readonly listeners = new Set<(mode: SharedStoreMode) => void>();

  constructor(
    /** Null without any Redis configured: every store then runs in process, for good. */
    private readonly redis: RedisClient | null,
    private readonly settings: RedisDownSettings,
    private readonly logger: LoggerService = new Logger('RedisDownPolicy'),
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!redis) {
      this.current = 'local';
      return;
    }
    this.current = redis.status === 'ready' ? 'shared' : settings.fallback;
    redis.on('ready', () => this.switchTo('shared', 'the Redis connection is ready'));
    redis.on('close', () => {
      // ioredis marks a deliberate quit (shutdown) as 'end' right after 'close': not an outage.
      setImmediate(() => {
        if (redis.status !== 'end') this.failed('the Redis connection closed');
      });
    });
  }

  get mode(): SharedStoreMode {
    return this.current;
  }

  /** RATE_LIMIT_ON_REDIS_DOWN. */
  get fallback(): RedisDownSettings['fallback'] {
    return this.settings.fallback;
  }

  /** RATE_LIMIT_REPLICAS: the fleet a replica assumes before Redis first counted it. */
  get assumedReplicas(): number {
    return this.settings.assumedReplicas;
  }

  /**
   * The fleet each replica's own share is cut for while on its own: the members Redis last
   * counted (told by the outbound scheduler, which holds the membership leases), else
   * RATE_LIMIT_REPLICAS.
   */
  get fleetSize(): number {
    return this.counted ?? this.settings.assumedReplicas;
  }

  /** The members Redis counted when this replica last heard from it. */
  fleetCounted(members: number): void {
    if (Number.isInteger(members) && members >= 1) this.counted = members;
  }

  /** This replica's part of a fleet-wide `limit` while on its own: an equal split, at least 1. */
  ownShareOf(limit: number): number {
    return Math.max(1, Math.floor(limit / this.fleetSize));
  }

  /** Called with the new mode at every change (before the caller that caused it continues). */
  onModeChange(listener: (mode: SharedStoreMode) => void): void {
    this.listeners.add(listener);
  }

  /**
   * Runs `shared` while Redis may answer; otherwise, or when it fails with RedisCallFailed (see
   * callRedis), `local`, or SharedStoreUnavailable naming `store` under `reject`. Any other error
   * is not Redis trouble: it passes on, and the mode stays as it is.
   */
  async run<T>(store: string, shared: () => Promise<T>, local: () => T | Promise<T>): Promise<T> {
    if (this.sharedWorthTrying()) {
      const sentAfter = this.failures;
      try {
        const answer = await shared();
        this.answered(sentAfter);
        return answer;
      } catch (error) {
        if (!(error instanceof RedisCallFailed)) throw error;
        this.callFailed(store, error);
      }
    }
    return this.withoutRedis(store, local);
  }

  /**
   * A call that keeps a store's presence in Redis alive (a membership lease): made whenever the
   * connection is up, also in the second after a failure when stores leave Redis alone, and
   * counted like any store's call. Resolves false when Redis could not take it.
   */
  async probe(store: string, call: () => Promise<unknown>): Promise<boolean> {
    if (this.redis?.status !== 'ready') return false;
    const sentAfter = this.failures;
    try {
      await call();
      this.answered(sentAfter);
      return true;
    } catch (error) {
      if (!(error instanceof RedisCallFailed)) throw error;
      this.callFailed(store, error);
      return false;
    }
  }

  /** What a store does when it cannot use Redis: `local`, or SharedStoreUnavailable under `reject`. */
  withoutRedis<R>(store: string, local: () => R): R {
    if (this.settings.fallback === 'reject') throw new SharedStoreUnavailable(store);
    return local();
  }

  /** Whether to try Redis now: always in shared mode, else once the connection is back and the probe pause passed. */
  private sharedWorthTrying(): boolean {
    if (this.current === 'shared') return true;
    return this.redis?.status === 'ready' && this.now() >= this.probeAfter;
  }

  /**
   * Redis answered a store's call. An answer to a call already on its way when another call failed
   * (a reply that was on the wire before a cut) says nothing of Redis now: it changes no mode.
   */
  private answered(sentAfterFailures: number): void {
    if (sentAfterFailures === this.failures) this.switchTo('shared', 'Redis answered');
  }

  /** Redis failed a call of `store`: the fallback, for a probe pause at least. */
  callFailed(store: string, error: unknown): void {
    this.failed(`Redis did not answer for ${store}: ${describeRedisFailure(error)}`);
  }

  private failed(reason: string): void {
    this.failures++;
    this.probeAfter = this.now() + PROBE_INTERVAL_MS;
    if (this.current === 'shared') this.switchTo(this.settings.fallback, reason);
  }

  private switchTo(mode: SharedStoreMode, reason: string): void {
    if (mode === this.current || !this.redis) return;
    this.current = mode;
    const message = `Outbound limiter mode: ${mode} (${reason})`;
    if (mode === 'shared') this.logger.log(message);
    else this.logger.warn(`${message}; ${FALLBACK_EFFECT[mode]}`);
    this.listeners.forEach((listener) => listener(mode));
  }
}
