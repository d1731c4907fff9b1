import { GatewayError } from '../http/gateway-error.js';
import type { SharedStoreMode } from '../redis/redis-down-policy.js';

export interface AcquireOptions {
  /** Longest the caller is willing to wait for its slot. */
  maxWaitMs: number;
  /** Aborts the wait (the caller went away); the reserved slot is given back. */
  signal?: AbortSignal;
}

/**
 * Every outbound vendor call passes through `acquire()`, retries included. Resolves when the
 * call may be sent; rejects with OutboundRateLimitRefusal, without taking a slot, when the next
 * free slot is further away than the caller may wait, and with SharedStoreUnavailable while the
 * shared budget cannot be reached under RATE_LIMIT_ON_REDIS_DOWN=reject.
 */
export abstract class OutboundRateLimiter {
  /** Whose budget the next call is counted against: the fleet's (shared), this replica's (local), or none (reject). */
  abstract readonly mode: SharedStoreMode;

  abstract acquire(options: AcquireOptions): Promise<void>;

  /**
   * Slots whose caller woke too late to use them and took a new one (a sign of CPU starvation);
   * none for a limiter that does not place calls in slots.
   */
  lateSlots(): number {
    return 0;
  }
}

export class OutboundRateLimitRefusal extends GatewayError {
  constructor(readonly waitMs: number) {
    super(429, 'The vendor call budget is spent; retry later', {
      retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
    });
  }
}
