import type { ThrottlerStorage } from '@nestjs/throttler';
import type { ClientQuotaEvents } from './client-quota-events.js';
import { monotonicNow } from './slot-wait.js';

/** The record type is not exported from the package root. */
export type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * Client quotas kept in this process: the same sliding log as lua/client-quota-hit.lua (at most
 * `limit` admitted requests in any `ttl` ms; refused requests are not recorded). Used without
 * Redis, and as the fallback while Redis is down. Keys are client ids, so the map stays as small
 * as the list of API keys.
 */
export class InProcessThrottlerStorage implements ThrottlerStorage {
  private readonly admissions = new Map<string, number[]>();

  constructor(
    private readonly now: () => number = monotonicNow,
    private readonly events?: ClientQuotaEvents,
  ) {}

  async increment(key: string, ttl: number, limit: number): Promise<ThrottlerStorageRecord> {
    const now = this.now();
    const log = this.admissions.get(key) ?? [];
    this.admissions.set(key, log);
    // Admissions are in time order: the ones out of the window are at the front, found in
    // amortised constant time (a high quota keeps thousands of them in the window).
    let expired = 0;
    while (expired < log.length && log[expired]! <= now - ttl) expired++;
    if (expired > 0) log.splice(0, expired);
    if (log.length >= limit) {
      const freesInMs = log[log.length - limit]! + ttl - now;
      this.events?.refused({ client: key, decidedBy: 'replica' });
      return quotaRecord(false, log.length, freesInMs, log[0]! + ttl - now);
    }
    log.push(now);
    return quotaRecord(true, log.length, 0, log[0]! + ttl - now);
  }
}

/** The throttler's record, in the whole seconds it puts into Retry-After and X-RateLimit-Reset. */
export function quotaRecord(
  admitted: boolean,
  hits: number,
  msUntilASlotFrees: number,
  msUntilWindowEmpties: number,
): ThrottlerStorageRecord {
  return {
    totalHits: hits,
    timeToExpire: wholeSeconds(msUntilWindowEmpties),
    isBlocked: !admitted,
    timeToBlockExpire: admitted ? 0 : wholeSeconds(msUntilASlotFrees),
  };
}

function wholeSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
