import { OutboundRateLimiter, type SlotReadiness } from './outbound-rate-limiter.js';
import { lateToleranceMs, watchWire, type SlotRules } from './slot-schedule.js';
import { abortError, type SlotWait } from './slot-wait.js';

/** A slot a caller holds. */
export interface HeldSlot {
  /** When the call may go out, on this process's monotonic clock. */
  readonly slotAt: number;
  /** The local time after which the caller would rather be refused than take a new slot. */
  readonly giveUpAt: number;
}

/**
 * What every limiter that hands out slots does with one, once reserved: wait for it, give it back
 * when the caller stops waiting, and trade it for a new one when the caller woke too late to use
 * it (a stalled event loop wakes every waiting timer at once, which would release a burst) or
 * was not ready at it (no warm vendor connection: the call would arrive a handshake late), and
 * move it to where its call reached the wire when that came too late. The limiters differ only in
 * where slots are kept: `replace`, `release` and `movedToWire`.
 */
export abstract class SlotLimiter<S extends HeldSlot> extends OutboundRateLimiter {
  private lateSlotCount = 0;
  private unreadySlotCount = 0;
  private lateWireCount = 0;
  private readonly lateToleranceMs: number;

  protected constructor(
    private readonly slotRules: SlotRules,
    protected readonly now: () => number,
    private readonly wait: SlotWait,
  ) {
    super();
    this.lateToleranceMs = lateToleranceMs(slotRules);
  }

  override lateSlots(): number {
    return this.lateSlotCount;
  }

  override unreadySlots(): number {
    return this.unreadySlotCount;
  }

  override lateWires(): number {
    return this.lateWireCount;
  }

  /**
   * Waits until the slot. The first wait starts before this returns (callers reserve in order).
   * May throw what `replace` throws: a refusal when no new slot fits in the wait that is left.
   */
  async waitFor(slot: S, signal?: AbortSignal, readiness?: SlotReadiness): Promise<void> {
    let current = slot;
    for (;;) {
      readiness?.expect(current.slotAt);
      const waitMs = current.slotAt - this.now();
      if (waitMs > 0) {
        try {
          await this.wait(waitMs, signal);
        } catch (error) {
          this.release(current);
          throw error;
        }
      }
      if (this.now() - current.slotAt > this.lateToleranceMs) this.lateSlotCount++;
      else if (readiness && !readiness.ready()) this.unreadySlotCount++;
      else {
        const slotTaken = current;
        readiness?.taken?.(watchWire(this.slotRules, slotTaken.slotAt, (overrunMs) => this.wiredLate(slotTaken, overrunMs)));
        return;
      }
      // A slot that came too late was never waited for: the caller may be gone meanwhile.
      if (signal?.aborted) {
        this.release(current);
        throw abortError(signal);
      }
      current = await this.replace(current, signal);
    }
  }

  private wiredLate(slot: S, overrunMs: number): void {
    this.lateWireCount++;
    this.movedToWire(slot, overrunMs);
  }

  /** Gives a slot its caller could not use back and takes the next free one, within the wait left. */
  protected abstract replace(slot: S, signal?: AbortSignal): S | Promise<S>;

  /** Gives back the slot of a caller that stopped waiting, so it does not count against the window. */
  protected abstract release(slot: S): void;

  /** The slot's call reached the wire `overrunMs` past the late tolerance (the margin): it counts that much later. */
  protected abstract movedToWire(slot: S, overrunMs: number): void;
}
