import { GatewayError } from '../http/gateway-error.js';

export interface AcquireOptions {
  /** Longest the caller is willing to wait for its slot. */
  maxWaitMs: number;
  /** Aborts the wait (the caller went away); the reserved slot is given back. */
  signal?: AbortSignal;
}

/**
 * Every outbound vendor call passes through `acquire()`, retries included. Resolves when the
 * call may be sent; rejects with OutboundRateLimitRefusal, without taking a slot, when the next
 * free slot is further away than the caller may wait.
 */
export abstract class OutboundRateLimiter {
  /** Slots whose caller woke too late to use them and took a new one (see lateToleranceMs). */
  protected lateSlotCount = 0;

  abstract acquire(options: AcquireOptions): Promise<void>;

  lateSlots(): number {
    return this.lateSlotCount;
  }
}

export class OutboundRateLimitRefusal extends GatewayError {
  constructor(readonly waitMs: number) {
    super(429, 'The vendor call budget is spent; retry later', {
      retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
    });
  }
}
