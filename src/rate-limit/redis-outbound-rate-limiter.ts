import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { LuaScript } from './lua-script.js';
import {
  OutboundRateLimiter,
  OutboundRateLimitRefusal,
  type AcquireOptions,
} from './outbound-rate-limiter.js';
import { SharedLimiterUnavailable } from './shared-limiter-unavailable.js';
import type { SlotRules } from './slot-schedule.js';

const RESERVE_SLOT = LuaScript.fromFile('reserve-outbound-slot.lua');

/** A slot the fleet-wide log granted to this caller. */
export interface Reservation {
  readonly id: string;
  /** How long to wait, from the moment Redis answered, before the call may go out. */
  readonly waitMs: number;
}

/**
 * The fleet-wide limiter: one sliding log of slots in Redis, shared by every replica, filled by
 * one atomic script per acquisition (see lua/reserve-outbound-slot.lua for the invariant). Each
 * caller waits for its own slot, so there is no polling and no thundering herd, and slots go out
 * close to arrival order across replicas.
 */
export class RedisOutboundRateLimiter extends OutboundRateLimiter {
  /** The newest slot Redis told us about, on this process's monotonic clock. */
  private horizon: number | undefined;

  constructor(
    private readonly redis: Redis,
    /** The log's key; its {hash tag} keeps the script on one Redis Cluster slot. */
    readonly key: string,
    private readonly rules: SlotRules,
    private readonly now: () => number = () => performance.now(),
    private readonly wait: (ms: number, signal?: AbortSignal) => Promise<unknown> = (ms, signal) =>
      sleep(ms, undefined, { signal }),
  ) {
    super();
  }

  async acquire(options: AcquireOptions): Promise<void> {
    options.signal?.throwIfAborted();
    await this.waitFor(await this.reserve(options.maxWaitMs), options.signal);
  }

  /**
   * Takes the next free slot, or throws OutboundRateLimitRefusal without taking one when it is
   * more than `maxWaitMs` away. `carriedOffsetsMs` are calls this replica released without Redis
   * (offsets from now, negative in the past), written into the log first so they count.
   * Throws SharedLimiterUnavailable when Redis does not answer.
   */
  async reserve(maxWaitMs: number, carriedOffsetsMs: readonly number[] = []): Promise<Reservation> {
    const id = randomUUID();
    const { limit, windowMs, safetyMarginMs } = this.rules;
    let reply: unknown;
    try {
      reply = await RESERVE_SLOT.run(
        this.redis,
        [this.key],
        [limit, windowMs, safetyMarginMs, maxWaitMs, id, ...carriedOffsetsMs.map(String)],
      );
    } catch (error) {
      throw new SharedLimiterUnavailable(error);
    }
    const answeredAt = this.now();
    const { granted, waitMs, lastSlotOffsetMs } = parseReply(reply);
    this.horizon = answeredAt + lastSlotOffsetMs;
    if (!granted) throw new OutboundRateLimitRefusal(waitMs);
    return { id, waitMs };
  }

  /** Waits until the reserved slot; a caller that stops waiting hands its slot back. */
  async waitFor(reservation: Reservation, signal?: AbortSignal): Promise<void> {
    if (reservation.waitMs <= 0) return;
    try {
      await this.wait(reservation.waitMs, signal);
    } catch (error) {
      // Best effort: if Redis is gone the slot simply stays unused.
      this.redis.zrem(this.key, reservation.id).catch(() => undefined);
      throw error;
    }
  }

  /** The newest slot anyone in the fleet reserved, as far as this replica last heard. */
  lastKnownSlot(): number | undefined {
    return this.horizon;
  }
}

function parseReply(reply: unknown): { granted: boolean; waitMs: number; lastSlotOffsetMs: number } {
  if (Array.isArray(reply) && reply.length === 3) {
    const [granted, waitMs, lastSlotOffsetMs] = reply.map(Number) as [number, number, number];
    if ([granted, waitMs, lastSlotOffsetMs].every(Number.isFinite)) {
      return { granted: granted === 1, waitMs, lastSlotOffsetMs };
    }
  }
  throw new SharedLimiterUnavailable(new Error('the reserve-outbound-slot script answered in an unexpected shape'));
}
