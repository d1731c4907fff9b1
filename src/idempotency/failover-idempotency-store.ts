import { Logger, type LoggerService } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { describeRedisFailure } from '../rate-limit/shared-limiter-unavailable.js';
import { IdempotencyStoreUnavailable } from './idempotency.errors.js';
import type { Claim, ClaimResult, IdempotencyStore } from './idempotency-store.js';
import type { InProcessIdempotencyStore } from './in-process-idempotency-store.js';
import type { RedisIdempotencyStore } from './redis-idempotency-store.js';

/**
 * Redis while it answers; while it does not, RATE_LIMIT_ON_REDIS_DOWN decides, as for the
 * limiter: `local` claims keys in this process (idempotent within the replica only), `reject`
 * answers 503. A claim is finished where it was made. A finish that Redis cannot take is logged
 * and dropped: the claim then lapses after its pending TTL, and the key can be used again.
 */
export class FailoverIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly redis: Redis,
    private readonly shared: RedisIdempotencyStore,
    private readonly local: InProcessIdempotencyStore,
    private readonly policy: 'local' | 'reject',
    private readonly logger: LoggerService = new Logger('Idempotency'),
  ) {}

  async claim(key: string, fingerprint: string, pendingTtlMs: number): Promise<ClaimResult> {
    if (this.redis.status === 'ready') {
      try {
        const result = await this.shared.claim(key, fingerprint, pendingTtlMs);
        return 'claim' in result ? { ...result, claim: this.tolerant(result.claim) } : result;
      } catch (error) {
        this.logger.warn(`Idempotency store: Redis did not answer (${describeRedisFailure(error)})`);
      }
    }
    if (this.policy === 'reject') throw new IdempotencyStoreUnavailable();
    return this.local.claim(key, fingerprint, pendingTtlMs);
  }

  private tolerant(claim: Claim): Claim {
    return {
      finish: async (end) => {
        try {
          return await claim.finish(end);
        } catch (error) {
          this.logger.warn(
            `Idempotency store: could not record the end of a claim (${end.action}); it lapses by itself ` +
              `(${describeRedisFailure(error)})`,
          );
          return false;
        }
      },
    };
  }
}
