import { randomUUID } from 'node:crypto';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { RedisClient } from '../redis/redis-connection.js';
import { LuaScript } from '../redis/lua-script.js';
import { callRedis } from '../redis/redis-call-failed.js';
import type { RedisDownPolicy } from '../redis/redis-down-policy.js';
import type { RedisKeys } from '../redis/redis-keys.js';
import {
  InProcessThrottlerStorage,
  quotaRecord,
  type ThrottlerStorageRecord,
} from './in-process-throttler-storage.js';

const QUOTA_HIT = LuaScript.load(new URL('./lua/client-quota-hit.lua', import.meta.url));

/** What a refused SharedStoreUnavailable names. */
const QUOTA_STORE = 'the client quota store';

/**
 * @nestjs/throttler storage on the gateway's Redis connection, so a client's quota holds across
 * replicas: one sliding-log script per request (lua/client-quota-hit.lua). No maintained Redis
 * storage accepts NestJS 12 yet, and the common ones count fixed windows, which let a client
 * through at twice its quota around a window edge.
 *
 * `blockDuration` is not used: a client over quota is admitted again as soon as a request of its
 * own leaves the window, which is what Retry-After announces. While Redis is down, RedisDownPolicy
 * decides, as for every shared store: this replica's share of the quota in process (split over
 * the fleet Redis last counted), or 503.
 */
export class RedisThrottlerStorage implements ThrottlerStorage {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly policy: RedisDownPolicy,
    private readonly local = new InProcessThrottlerStorage(),
  ) {}

  increment(key: string, ttl: number, limit: number): Promise<ThrottlerStorageRecord> {
    return this.policy.run(
      QUOTA_STORE,
      () =>
        callRedis(async () =>
          parseReply(await QUOTA_HIT.run(this.redis, [this.keys.clientQuota(key)], [limit, ttl, randomUUID()]), ttl),
        ),
      () => this.local.increment(key, ttl, this.policy.ownShareOf(limit)),
    );
  }
}

function parseReply(reply: unknown, ttl: number): ThrottlerStorageRecord {
  if (Array.isArray(reply) && reply.length === 3) {
    const [admitted, hits, ms] = reply.map(Number) as [number, number, number];
    if ([admitted, hits, ms].every(Number.isFinite)) {
      return quotaRecord(admitted === 1, hits, ms, admitted === 1 ? ms : ttl);
    }
  }
  throw new Error('the client-quota-hit script answered in an unexpected shape');
}
