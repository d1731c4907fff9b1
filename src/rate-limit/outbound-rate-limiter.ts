import { GatewayError } from '../http/gateway-error.js';
import type { SharedStoreMode } from '../redis/redis-down-policy.js';
import type { Priority } from './rate-limit.settings.js';

export interface AcquireOptions {
  /** Longest the caller is willing to wait for its slot. */
  maxWaitMs: number;
  /** Aborts the wait (the caller went away); the reserved slot is given back. */
  signal?: AbortSignal;
  /** Whose share the call counts against (the authenticated client id). */
  client?: string;
  /** `interactive` unless said otherwise. */
  priority?: Priority;
  /** What the call needs ready at its slot (a warm vendor connection); without it, any slot is used as it comes. */
  readiness?: SlotReadiness;
}

/**
 * The caller's side of a slot: told when its slot is, so it can get ready ahead (open a vendor
 * connection), and asked at the slot whether it can leave at once. A call that cannot would reach
 * the vendor late and crowd the next window, so it trades its slot for a later one instead.
 */
export interface SlotReadiness {
  /** The caller's slot, on this replica's monotonic clock (told again when the slot is traded). */
  expect(slotAt: number): void;
  /** At the slot: true when the call can leave now. */
  ready(): boolean;
  /**
   * The slot is the call's: `wired` is to be told when its request reached the wire. A process
   * starved between its slot and the wire writes late, where the next window's calls may already
   * be; told, the limiter counts the call where it left, so that no later slot crowds it.
   */
  taken?(wired: WireReport): void;
}

/** When a call's request reached the wire, on this replica's monotonic clock (the first write of it counts). */
export type WireReport = (wiredAt: number) => void;

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

  /** Slots traded because their caller was not ready at them (no warm vendor connection idle). */
  unreadySlots(): number {
    return 0;
  }

  /**
   * Calls whose request reached the wire more than the whole safety margin after their slot (a
   * process starved after its slot), each moved in the log by the excess; none for a limiter without slots.
   */
  lateWires(): number {
    return 0;
  }

  /** What each client waiting now would get per second if every one of them kept asking (none waiting: empty). */
  fairShares(): Promise<FairShare[]> {
    return Promise.resolve([]);
  }

  /** The fleet as the shared store last showed it; undefined without one. */
  fleetView(): FleetView | undefined {
    return undefined;
  }

  /** How often this replica went on its own share after its membership lease lapsed. */
  leaseLapses(): number {
    return 0;
  }

  /** The round trip to the shared scheduler and the grant timing it sets; undefined without one, or before its first answer. */
  schedulerTiming(): SchedulerTiming | undefined {
    return undefined;
  }

  /** Called at every change of `mode`, with its reason; a limiter whose mode never changes never calls it. */
  onModeChange(_listener: (change: BudgetModeChange) => void): void {}
}

export interface SchedulerTiming {
  /** The typical round trip of this replica's recent calls to Redis. */
  roundTripMs: number;
  /** How far ahead of now the scheduler granted in its last answer (the longest horizon a live member needs). */
  horizonMs: number;
}

/** The budget's mode changed: Redis failed a call or its connection (`unreachable`), answers too slowly (`slow`), or is fine again (`recovered`). */
export interface BudgetModeChange {
  mode: SharedStoreMode;
  reason: 'unreachable' | 'slow' | 'recovered';
}

export interface FairShare {
  client: string;
  priority: Priority;
  /** Calls per second. */
  perSecond: number;
}

/** The fleet's members as Redis counts them. */
export interface FleetView {
  /** Members whose lease is current. */
  active: number;
  /** Members whose lease lapsed recently: they may be sending on their own share, and the fleet leaves room for them. */
  lapsed: number;
  /** Calls per window this replica may send on its own if it loses Redis. */
  share: number;
  lapsedMembers: readonly string[];
}

export class OutboundRateLimitRefusal extends GatewayError {
  constructor(
    /** When a slot is expected (ms from now). */
    readonly waitMs: number,
    /** Which share was spent: `client web's share of the fleet's vendor budget (interactive)`. */
    share?: string,
  ) {
    const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000));
    super(
      429,
      share === undefined
        ? 'The vendor call budget is spent; retry later'
        : `The vendor call budget is spent: ${share} has no free slot within the wait; the next is expected in about ${retryAfterSeconds} s`,
      { retryAfterSeconds },
    );
  }

  override get refusalReason(): string {
    return 'vendor budget';
  }
}
