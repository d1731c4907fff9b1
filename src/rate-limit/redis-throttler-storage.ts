import { randomUUID } from 'node:crypto';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Redis } from 'ioredis';
import {
  InProcessThrottlerStorage,
  quotaRecord,
  type ThrottlerStorageRecord,
} from './in-process-throttler-storage.js';
import { LuaScript } from './lua-script.js';
import { OutboundLimiterUnavailable } from './outbound-limiter-unavailable.js';

const QUOTA_HIT = LuaScript.fromFile('client-quota-hit.lua');

export interface QuotaFallback {
  policy: 'local' | 'reject';
  /** Each replica's share of a client's quota while Redis is down is limit / replicas. */
  assumedReplicas: number;
}

/**
 * @nestjs/throttler storage on the gateway's Redis connection, so a client's quota holds across
 * replicas: one sliding-log script per request (lua/client-quota-hit.lua). No maintained Redis
 * storage accepts NestJS 12 yet, and the common ones count fixed windows, which let a client
 * through at twice its quota around a window edge.
 *
 * `blockDuration` is not used: a client over quota is admitted again as soon as a request of its
 * own leaves the window, which is what Retry-After announces. While Redis is down, quotas follow
 * RATE_LIMIT_ON_REDIS_DOWN like the outbound limiter: this replica's share in process, or 503.
 */
export class RedisThrottlerStorage implements ThrottlerStorage {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly fallback: QuotaFallback,
    private readonly local = new InProcessThrottlerStorage(),
  ) {}

  async increment(key: string, ttl: number, limit: number): Promise<ThrottlerStorageRecord> {
    if (this.redis.status === 'ready') {
      try {
        const reply = await QUOTA_HIT.run(this.redis, [this.redisKey(key)], [limit, ttl, randomUUID()]);
        return parseReply(reply, ttl);
      } catch {
        // Falls through: the outbound limiter reports Redis trouble and the mode change.
      }
    }
    if (this.fallback.policy === 'reject') throw new OutboundLimiterUnavailable();
    const share = Math.max(1, Math.floor(limit / this.fallback.assumedReplicas));
    return this.local.increment(key, ttl, share);
  }

  /** One hash tag per client: the script touches a single key, on one Cluster slot. */
  redisKey(key: string): string {
    return `${this.keyPrefix}:quota:{${key}}`;
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
