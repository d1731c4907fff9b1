// The first-come-first-served limiter's src/rate-limit/redis-outbound-rate-limiter.ts as of a8dab26, kept as the baseline of
// npm run bench:fairness and npm run bench; only its imports differ (see bench/fcfs-gateway.ts).
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../../src/redis/redis-connection.js';
import { LuaScript } from '../../src/redis/lua-script.js';
import { RedisCallFailed } from '../../src/redis/redis-call-failed.js';
import { OutboundRateLimitRefusal, type AcquireOptions } from '../../src/rate-limit/outbound-rate-limiter.js';
import { RedisClock } from '../../src/rate-limit/redis-clock.js';
import { SlotLimiter, type HeldSlot } from '../../src/rate-limit/slot-limiter.js';
import type { SlotRules } from '../../src/rate-limit/slot-schedule.js';
import { monotonicNow, remainingWaitMs, timerWait, type SlotWait } from '../../src/rate-limit/slot-wait.js';

const RESERVE_SLOT = LuaScript.load(new URL('./lua/reserve-outbound-slot.lua', import.meta.url));

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

/** The keys of one budget (RedisKeys names them; one hash tag keeps the script on one Cluster slot). */
export interface OutboundBudgetKeys {
  /** The log of slots. */
  readonly slots: string;
  /** The hand-over marker beside it. */
  readonly handover: string;
}

/** A slot the fleet-wide log granted to this caller. */
export interface Reservation extends HeldSlot {
  readonly id: string;
  /** How far the slot was from the moment the script ran, in Redis time. */
  readonly waitMs: number;
  /** How long the script's answer took to come back, as this process saw it. */
  readonly roundTripMs: number;
}

interface ReserveRequest {
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
 * Every Redis failure surfaces as RedisCallFailed.
 */
export class RedisOutboundRateLimiter extends SlotLimiter<Reservation> {
  readonly mode = 'shared';
  /** The newest slot Redis told us about, on this process's monotonic clock. */
  private horizon: number | undefined;
  private readonly clock = new RedisClock();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: OutboundBudgetKeys,
    private readonly rules: SharedSlotRules,
    now: () => number = monotonicNow,
    wait: SlotWait = timerWait,
  ) {
    super(rules, now, wait);
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
   */
  reserve(maxWaitMs: number, carriedOffsetsMs: readonly number[] = [], startsHandover = false): Promise<Reservation> {
    return this.reserveSlot({ giveUpAt: this.now() + maxWaitMs, carriedOffsetsMs, startsHandover });
  }

  /** The newest slot anyone in the fleet reserved, as far as this replica last heard. */
  lastKnownSlot(): number | undefined {
    return this.horizon;
  }

  protected replace(slot: Reservation): Promise<Reservation> {
    return this.reserveSlot({
      giveUpAt: slot.giveUpAt,
      replacing: slot.id,
      // A slow answer may be what made the slot late: the new slot leaves room for one.
      leadMs: slot.roundTripMs,
    });
  }

  protected release(slot: Reservation): void {
    // Best effort: if Redis is gone the slot simply stays unused.
    this.redis.zrem(this.keys.slots, slot.id).catch(() => undefined);
  }

  /** The first-come baseline as it was measured: a call counts where its slot was, however late it left. */
  protected movedToWire(): void {}

  private async reserveSlot(request: ReserveRequest): Promise<Reservation> {
    const id = randomUUID();
    const { limit, windowMs, safetyMarginMs, handover } = this.rules;
    const sentAt = this.now();
    let reply: unknown;
    try {
      reply = await RESERVE_SLOT.run(this.redis, [this.keys.slots, this.keys.handover], [
        limit,
        windowMs,
        safetyMarginMs,
        remainingWaitMs(request.giveUpAt, sentAt),
        request.leadMs ?? 0,
        id,
        request.replacing ?? '',
        handover?.limit ?? limit,
        request.startsHandover && handover ? handover.durationMs : 0,
        ...(request.carriedOffsetsMs ?? []).map(String),
      ]);
    } catch (error) {
      throw new RedisCallFailed(error);
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
  throw new RedisCallFailed(new Error('the reserve-outbound-slot script answered in an unexpected shape'));
}
