import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import type { RedisClient } from '../src/redis/redis-connection.js';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import {
  OutboundRateLimiter,
  OutboundRateLimitRefusal,
  type AcquireOptions,
} from '../src/rate-limit/outbound-rate-limiter.js';

/**
 * The benchmark's baseline, as popular Redis limiters work: rate-limiter-flexible's
 * RateLimiterRedis, a fixed window of `limit` points per `windowMs`, shared through Redis.
 * A caller that finds the window spent sleeps for its `msBeforeNext` and tries again, while its
 * wait allows; otherwise it is refused, as ours is. Benchmark only.
 */
export class FixedWindowOutboundRateLimiter extends OutboundRateLimiter {
  /** Always the shared window: the baseline has no fallback of its own. */
  readonly mode = 'shared';
  private readonly limiter: RateLimiterRedis;

  constructor(
    redis: RedisClient,
    private readonly key: string,
    limit: number,
    windowMs: number,
  ) {
    super();
    this.limiter = new RateLimiterRedis({
      storeClient: redis,
      keyPrefix: 'bench-fixed-window',
      points: limit,
      duration: windowMs / 1000,
    });
  }

  async acquire({ maxWaitMs, signal }: AcquireOptions): Promise<void> {
    const giveUpAt = performance.now() + maxWaitMs;
    for (;;) {
      signal?.throwIfAborted();
      try {
        await this.limiter.consume(this.key, 1);
        return;
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        const retryIn = rejection.msBeforeNext;
        if (performance.now() + retryIn > giveUpAt) throw new OutboundRateLimitRefusal(retryIn);
        await sleep(retryIn, undefined, { signal });
      }
    }
  }
}
