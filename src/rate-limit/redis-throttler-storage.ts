import { randomUUID } from 'node:crypto';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { RedisClient } from '../redis/redis-connection.js';
import { LuaScript } from '../redis/lua-script.js';
import { callRedis } from '../redis/redis-call-failed.js';
import type { RedisDownPolicy } from '../redis/redis-down-policy.js';
import type { RedisKeys } from '../redis/redis-keys.js';
import { ClientQuotaEvents } from './client-quota-events.js';
import {
  InProcessThrottlerStorage,
  quotaRecord,
  type ThrottlerStorageRecord,
} from './in-process-throttler-storage.js';
import { OverQuotaMemory } from './over-quota-memory.js';
import { monotonicNow } from './slot-wait.js';

const QUOTA_HIT = LuaScript.load(new URL('./lua/client-quota-hit.lua', import.meta.url));

/** What a refused SharedStoreUnavailable names. */
const QUOTA_STORE = 'the client quota store';

/** What the storage is built with besides its Redis; tests replace the clock and the parts. */
export interface RedisThrottlerStorageParts {
  /** The quota while Redis is down (RedisDownPolicy 'local'). */
  local?: InProcessThrottlerStorage;
  events?: ClientQuotaEvents;
  now?: () => number;
}

/**
 * @nestjs/throttler storage on the gateway's Redis connection, so a client's quota holds across
 * replicas: one sliding-log script per request (lua/client-quota-hit.lua). No maintained Redis
 * storage accepts NestJS 12 yet, and the common ones count fixed windows, which let a client
 * through at twice its quota around a window edge.
 *
 * `blockDuration` is not used: a client over quota is admitted again as soon as a request of its
 * own leaves the window, which is what Retry-After announces. Until then this replica refuses it
 * without asking Redis again (OverQuotaMemory): a client looping on its 429 costs no Redis round
 * trip per knock. While Redis is down, RedisDownPolicy decides, as for every shared store: this
 * replica's share of the quota in process (split over the fleet Redis last counted), or 503.
 */
export class RedisThrottlerStorage implements ThrottlerStorage {
  private readonly local: InProcessThrottlerStorage;
  private readonly events: ClientQuotaEvents;
  private readonly now: () => number;
  private readonly overQuota: OverQuotaMemory;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly policy: RedisDownPolicy,
    parts: RedisThrottlerStorageParts = {},
  ) {
    this.events = parts.events ?? new ClientQuotaEvents();
    this.now = parts.now ?? monotonicNow;
    this.local = parts.local ?? new InProcessThrottlerStorage(this.now, this.events);
    this.overQuota = new OverQuotaMemory(this.now);
  }

  increment(key: string, ttl: number, limit: number): Promise<ThrottlerStorageRecord> {
    const knownRefusal = this.overQuota.refusedFor(key, ttl, limit);
    if (knownRefusal !== undefined) {
      this.events.refused({ client: key, decidedBy: 'replica' });
      return Promise.resolve(quotaRecord(false, limit, knownRefusal, knownRefusal));
    }
    return this.policy.run(
      QUOTA_STORE,
      () => callRedis(() => this.askRedis(key, ttl, limit)),
      () => this.local.increment(key, ttl, this.policy.ownShareOf(limit)),
    );
  }

  private async askRedis(key: string, ttl: number, limit: number): Promise<ThrottlerStorageRecord> {
    const askedAt = this.now();
    const reply = parseReply(await QUOTA_HIT.run(this.redis, [this.keys.clientQuota(key)], [limit, ttl, randomUUID()]));
    if (reply.admitted) return quotaRecord(true, reply.hits, reply.ms, reply.ms);
    this.overQuota.remember(key, ttl, limit, askedAt, reply.ms);
    this.events.refused({ client: key, decidedBy: 'shared store' });
    return quotaRecord(false, reply.hits, reply.ms, ttl);
  }
}

/** The script's answer: admitted or not, the hits in the window, and ms until the window's next relevant exit. */
function parseReply(reply: unknown): { admitted: boolean; hits: number; ms: number } {
  if (Array.isArray(reply) && reply.length === 3) {
    const [admitted, hits, ms] = reply.map(Number) as [number, number, number];
    if ([admitted, hits, ms].every(Number.isFinite)) return { admitted: admitted === 1, hits, ms };
  }
  throw new Error('the client-quota-hit script answered in an unexpected shape');
}
