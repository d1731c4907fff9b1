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

/** The queue of batch callbacks (one for the fleet, under batchQueuePrefix): its own hash tag. */
export const BATCH_CALLBACK_QUEUE = '{callbacks}';

/** The route whose idempotency records were named before routes were told apart. */
const UNSCOPED_IDEMPOTENCY_ROUTE = 'POST /rooms';

/** The keys of one batch (see rooms/batches/lua), in the scripts' KEYS order. */
export interface BatchKeys {
  readonly meta: string;
  readonly rooms: string;
  readonly clientPending: string;
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

  /**
   * One batch's keys: its meta hash and its rooms hash, beside the client's count of rooms not yet
   * sent, all under the client's hash tag (the batch scripts touch the three at once). The client in
   * the name is what makes a batch another client's "not found".
   */
  batch(clientId: string, batchId: string): BatchKeys {
    const client = `${this.prefix}:batch:{${clientId}}`;
    return { meta: `${client}:${batchId}:meta`, rooms: `${client}:${batchId}:rooms`, clientPending: `${client}:pending` };
  }

  /**
   * BullMQ's names for the batch queues: one prefix, and one queue per client whose name carries
   * the client's hash tag, so that every key of one queue lies in one Cluster slot.
   */
  get batchQueuePrefix(): string {
    return `${this.prefix}:bq`;
  }

  batchRoomQueue(clientId: string): string {
    return `{rooms.${clientId}}`;
  }

  /**
   * One Idempotency-Key's record, scoped by client (the hash tag) and route: the same key sent to
   * two routes is two keys. Only a digest of the key (the client's text) is in the name. POST /rooms
   * keeps the name it had before routes were told apart, so records survive a rolling upgrade.
   */
  idempotencyRecord(clientId: string, route: string, key: string): string {
    const scoped = route === UNSCOPED_IDEMPOTENCY_ROUTE ? key : `${route}\n${key}`;
    return `${this.prefix}:idem:{${clientId}}:${createHash('sha256').update(scoped, 'utf8').digest('hex')}`;
  }

}
