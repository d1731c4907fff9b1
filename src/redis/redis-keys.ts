import { createHash } from 'node:crypto';

/** The keys one budget's scheduler script is given, in its KEYS order. */
export interface OutboundBudgetKeys {
  readonly slots: string;
  readonly interactiveQueue: string;
  readonly batchQueue: string;
  readonly tickets: string;
  readonly fairness: string;
  readonly granted: string;
  readonly deadlines: string;
  readonly members: string;
  readonly shares: string;
  readonly lines: string;
  readonly reaches: string;
}

/**
 * Every key the gateway writes, in one place (as envoy ratelimit's CacheKeyGenerator builds all of
 * its keys). Each keyspace puts the part that groups its keys in a {hash tag}: every key one
 * script touches then lies in one Redis Cluster slot (one per budget, one per client).
 */
export class RedisKeys {
  /** `prefix`: REDIS_KEY_PREFIX, without braces (a second hash tag would move a key's slot). */
  constructor(readonly prefix: string) {}

  /**
   * The keys of one vendor budget's scheduler (see rate-limit/lua/schedule-outbound.lua), all
   * under the budget's hash tag: the slot log, the two queues, the clients' lines, the tickets,
   * the fairness state, the grants waiting to be collected, the deadlines, and the members with
   * their shares and their grant horizons.
   */
  outboundBudget(appId: number): OutboundBudgetKeys {
    const budget = `${this.prefix}:{outbound:${appId}}`;
    return {
      slots: `${budget}:slots`,
      interactiveQueue: `${budget}:queue:interactive`,
      batchQueue: `${budget}:queue:batch`,
      tickets: `${budget}:tickets`,
      fairness: `${budget}:fairness`,
      granted: `${budget}:granted`,
      deadlines: `${budget}:deadlines`,
      members: `${budget}:members`,
      shares: `${budget}:shares`,
      lines: `${budget}:lines`,
      reaches: `${budget}:reaches`,
    };
  }

  /** One client's quota log (a sorted set). */
  clientQuota(clientId: string): string {
    return `${this.prefix}:quota:{${clientId}}`;
  }

  /** One Idempotency-Key's record: the client in the hash tag, only a digest of the key (the client's text) in the name. */
  idempotencyRecord(clientId: string, key: string): string {
    return `${this.prefix}:idem:{${clientId}}:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
  }
}
