import { Module } from '@nestjs/common';
import type { RedisClient } from '../redis/redis-connection.js';
import { REDIS } from '../redis/redis.module.js';
import { RedisDownPolicy } from '../redis/redis-down-policy.js';
import { FailoverIdempotencyStore } from './failover-idempotency-store.js';
import { IDEMPOTENCY_STORE, type IdempotencyStore } from './idempotency-store.js';
import { IdempotencyService } from './idempotency.service.js';
import { InProcessIdempotencyStore } from './in-process-idempotency-store.js';
import { RedisIdempotencyStore } from './redis-idempotency-store.js';

/** Which store holds the keys: Redis (with the Redis-down policy's fallback) when configured, else this process. */
export function createIdempotencyStore(redis: RedisClient | null, policy: RedisDownPolicy): IdempotencyStore {
  if (!redis) return new InProcessIdempotencyStore();
  return new FailoverIdempotencyStore(new RedisIdempotencyStore(redis), new InProcessIdempotencyStore(), policy);
}

/**
 * The Idempotency-Key header: routes apply IdempotencyInterceptor, which Nest builds in the module
 * of the route's controller from the service exported here; the store is chosen here.
 */
@Module({
  providers: [
    { provide: IDEMPOTENCY_STORE, inject: [REDIS, RedisDownPolicy], useFactory: createIdempotencyStore },
    IdempotencyService,
  ],
  exports: [IdempotencyService],
})
export class IdempotencyModule {}
