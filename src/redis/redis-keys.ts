import { createHash } from 'node:crypto';

/**
 * Every key the gateway writes, in one place (as envoy ratelimit's CacheKeyGenerator builds all of
 * its keys). Each keyspace puts the part that groups its keys in a {hash tag}: every key one
 * script touches then lies in one Redis Cluster slot (one per budget, one per client).
 */
export class RedisKeys {
  /** `prefix`: REDIS_KEY_PREFIX, without braces (a second hash tag would move a key's slot). */
  constructor(readonly prefix: string) {}

  /** The fleet-wide log of outbound slots of one vendor AppId (a sorted set). */
  outboundSlots(appId: number): string {
    return `${this.outboundBudget(appId)}:slots`;
  }

  /** The hand-over marker beside the slot log: until when the log leaves room for replicas on their own share. */
  outboundHandover(appId: number): string {
    return `${this.outboundBudget(appId)}:slots:handover`;
  }

  /** One client's quota log (a sorted set). */
  clientQuota(clientId: string): string {
    return `${this.prefix}:quota:{${clientId}}`;
  }

  /** One Idempotency-Key's record: the client in the hash tag, only a digest of the key (the client's text) in the name. */
  idempotencyRecord(clientId: string, key: string): string {
    return `${this.prefix}:idem:{${clientId}}:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
  }

  private outboundBudget(appId: number): string {
    return `${this.prefix}:{outbound:${appId}}`;
  }
}
