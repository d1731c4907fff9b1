import { Logger, type LoggerService } from '@nestjs/common';
import { callRedis, describeRedisFailure } from '../redis/redis-call-failed.js';
import type { RedisDownPolicy } from '../redis/redis-down-policy.js';
import type { Claim, ClaimResult, IdempotencyStore } from './idempotency-store.js';
import type { InProcessIdempotencyStore } from './in-process-idempotency-store.js';
import type { RedisIdempotencyStore } from './redis-idempotency-store.js';

/** What a refused SharedStoreUnavailable names. */
const IDEMPOTENCY_STORE_NAME = 'the idempotency store';

/**
 * Redis while it answers; while it does not, RedisDownPolicy decides, as for every shared store:
 * `local` claims keys in this process (idempotent within the replica only), `reject` answers 503.
 * A claim is finished where it was made. A finish that Redis cannot take is logged and dropped:
 * the claim then lapses after its pending TTL, and the key can be used again.
 */
export class FailoverIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly shared: RedisIdempotencyStore,
    private readonly local: InProcessIdempotencyStore,
    private readonly policy: RedisDownPolicy,
    private readonly logger: LoggerService = new Logger('Idempotency'),
  ) {}

  claim(key: string, fingerprint: string, pendingTtlMs: number): Promise<ClaimResult> {
    return this.policy.run(
      IDEMPOTENCY_STORE_NAME,
      async () => {
        const result = await callRedis(() => this.shared.claim(key, fingerprint, pendingTtlMs));
        return 'claim' in result ? { ...result, claim: this.tolerant(result.claim) } : result;
      },
      () => this.local.claim(key, fingerprint, pendingTtlMs),
    );
  }

  private tolerant(claim: Claim): Claim {
    return {
      finish: async (end) => {
        try {
          return await claim.finish(end);
        } catch (error) {
          this.policy.callFailed(IDEMPOTENCY_STORE_NAME, error);
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
