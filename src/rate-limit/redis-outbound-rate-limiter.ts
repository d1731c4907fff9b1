import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LuaScript } from './lua-script.js';
import {
  monotonicNow,
  OutboundRateLimiter,
  OutboundRateLimitRefusal,
  timerWait,
  type AcquireOptions,
  type SlotWait,
} from './outbound-rate-limiter.js';
import { RedisClock } from './redis-clock.js';
import { SharedLimiterUnavailable } from './shared-limiter-unavailable.js';
import { lateToleranceMs, type SlotRules } from './slot-schedule.js';

const RESERVE_SLOT = LuaScript.fromFile('reserve-outbound-slot.lua');

/**
 * How the shared log makes room, after Redis was unreachable, for replicas still on their
 * in-process share (see HAND-OVER in lua/reserve-outbound-slot.lua).
 */
export interface HandoverRules {
  /** The fleet's limit while a hand-over lasts: limit − (replicas − 1) × share. */
  readonly limit: number;
  /** How long a hand-over lasts after a replica comes back. */
  readonly durationMs: number;
}

export interface SharedSlotRules extends SlotRules {
  /** Default: no hand-over (the full limit at once). */
  readonly handover?: HandoverRules;
}

/** A slot the fleet-wide log granted to this caller. */
export interface Reservation {
  readonly id: string;
  /** How far the slot was from the moment the script ran, in Redis time. */
  readonly waitMs: number;
  /** The slot, on this process's monotonic clock. */
  readonly slotAt: number;
  /** The local time after which the caller would rather be refused than take a new slot. */
  readonly giveUpAt: number;
  /** How long the script's answer took to come back, as this process saw it. */
  readonly roundTripMs: number;
}

interface ReserveRequest {
  maxWaitMs: number;
  giveUpAt: number;
  carriedOffsetsMs?: readonly number[];
  /** This replica is back from its in-process share: the hand-over starts. */
  startsHandover?: boolean;
  /** A slot this caller gives back in the same script run (it woke too late to use it). */
  replacing?: string;
  /** The earliest the new slot may be, from the moment the script runs. */
  leadMs?: number;
}

/**
 * The fleet-wide limiter: one sliding log of slots in Redis, shared by every replica, filled by
 * one atomic script per acquisition (see lua/reserve-outbound-slot.lua for the invariant). Each
 * caller waits for its own slot, so there is no polling and no thundering herd, and slots go out
 * close to arrival order across replicas. Slots are placed on the local clock through RedisClock,
 * and a caller that wakes too late for its slot takes a new one rather than crowd the next window.
 */
export class RedisOutboundRateLimiter extends OutboundRateLimiter {
  /** The newest slot Redis told us about, on this process's monotonic clock. */
  private horizon: number | undefined;
  private readonly clock = new RedisClock();
  private readonly lateToleranceMs: number;

  constructor(
    private readonly redis: Redis,
    /** The log's key; its {hash tag} keeps the script on one Redis Cluster slot. */
    readonly key: string,
    private readonly rules: SharedSlotRules,
    private readonly now: () => number = monotonicNow,
    private readonly wait: SlotWait = timerWait,
  ) {
    super();
    this.lateToleranceMs = lateToleranceMs(rules);
  }

  async acquire(options: AcquireOptions): Promise<void> {
    options.signal?.throwIfAborted();
    await this.waitFor(await this.reserve(options.maxWaitMs), options.signal);
  }

  /**
   * Takes the next free slot, or throws OutboundRateLimitRefusal without taking one when it is
   * more than `maxWaitMs` away. `carriedOffsetsMs` are calls this replica released without Redis
   * (offsets from now, negative in the past), written into the log first so they count; with
   * `startsHandover` the replica is back from its in-process share and the hand-over starts.
   * Throws SharedLimiterUnavailable when Redis does not answer.
   */
  reserve(maxWaitMs: number, carriedOffsetsMs: readonly number[] = [], startsHandover = false): Promise<Reservation> {
    return this.reserveSlot({ maxWaitMs, giveUpAt: this.now() + maxWaitMs, carriedOffsetsMs, startsHandover });
  }

  /**
   * Waits until the reserved slot; a caller that stops waiting hands its slot back. A caller that
   * wakes more than the late tolerance after its slot trades it for a new one, within the wait it
   * has left (so this may also throw OutboundRateLimitRefusal or SharedLimiterUnavailable).
   */
  async waitFor(reservation: Reservation, signal?: AbortSignal): Promise<void> {
    let current = reservation;
    for (;;) {
      const waitMs = current.slotAt - this.now();
      if (waitMs > 0) {
        try {
          await this.wait(waitMs, signal);
        } catch (error) {
          // Best effort: if Redis is gone the slot simply stays unused.
          this.redis.zrem(this.key, current.id).catch(() => undefined);
          throw error;
        }
      }
      const wokeAt = this.now();
      if (wokeAt - current.slotAt <= this.lateToleranceMs) return;
      this.lateSlotCount++;
      current = await this.reserveSlot({
        maxWaitMs: Math.max(0, current.giveUpAt - wokeAt),
        giveUpAt: current.giveUpAt,
        replacing: current.id,
        // A slow answer may be what made the slot late: the new slot leaves room for one.
        leadMs: current.roundTripMs,
      });
    }
  }

  /** The newest slot anyone in the fleet reserved, as far as this replica last heard. */
  lastKnownSlot(): number | undefined {
    return this.horizon;
  }

  private async reserveSlot(request: ReserveRequest): Promise<Reservation> {
    const id = randomUUID();
    const { limit, windowMs, safetyMarginMs, handover } = this.rules;
    const sentAt = this.now();
    let reply: unknown;
    try {
      reply = await RESERVE_SLOT.run(this.redis, [this.key, `${this.key}:handover`], [
        limit,
        windowMs,
        safetyMarginMs,
        request.maxWaitMs,
        request.leadMs ?? 0,
        id,
        request.replacing ?? '',
        handover?.limit ?? limit,
        request.startsHandover && handover ? handover.durationMs : 0,
        ...(request.carriedOffsetsMs ?? []).map(String),
      ]);
    } catch (error) {
      throw new SharedLimiterUnavailable(error);
    }
    const answeredAt = this.now();
    const { granted, waitMs, lastSlotOffsetMs, serverNowMs } = parseReply(reply);
    this.clock.observe(serverNowMs, sentAt, answeredAt);
    const ranAt = this.clock.toLocal(serverNowMs);
    this.horizon = ranAt + lastSlotOffsetMs;
    if (!granted) throw new OutboundRateLimitRefusal(waitMs);
    return { id, waitMs, slotAt: ranAt + waitMs, giveUpAt: request.giveUpAt, roundTripMs: answeredAt - sentAt };
  }
}

function parseReply(reply: unknown): {
  granted: boolean;
  waitMs: number;
  lastSlotOffsetMs: number;
  serverNowMs: number;
} {
  if (Array.isArray(reply) && reply.length === 4) {
    const numbers = reply.map(Number);
    if (numbers.every(Number.isFinite)) {
      const [granted, waitMs, lastSlotOffsetMs, serverNowMs] = numbers as [number, number, number, number];
      return { granted: granted === 1, waitMs, lastSlotOffsetMs, serverNowMs };
    }
  }
  throw new SharedLimiterUnavailable(new Error('the reserve-outbound-slot script answered in an unexpected shape'));
}
