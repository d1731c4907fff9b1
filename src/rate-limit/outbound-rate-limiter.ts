import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { GatewayError } from '../http/gateway-error.js';

/** Waits `ms`, rejecting when the signal aborts: how a limiter waits for a slot (tests inject theirs). */
export type SlotWait = (ms: number, signal?: AbortSignal) => Promise<unknown>;

export const timerWait: SlotWait = (ms, signal) => sleep(ms, undefined, { signal });

/** The clock slots are placed on: monotonic, so wall-clock steps cannot move a slot. */
export const monotonicNow = (): number => performance.now();

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
