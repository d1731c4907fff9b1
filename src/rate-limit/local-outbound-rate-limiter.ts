import {
  monotonicNow,
  OutboundRateLimiter,
  OutboundRateLimitRefusal,
  timerWait,
  type AcquireOptions,
  type SlotWait,
} from './outbound-rate-limiter.js';
import { lateToleranceMs, nextSlot, type SlotRules } from './slot-schedule.js';

/**
 * The limiter for one process: a sliding log of reserved release times on the monotonic clock.
 * Safe for a single replica only; the fleet shares a Redis-backed limiter.
 */
export class LocalOutboundRateLimiter extends OutboundRateLimiter {
  /** Reserved release times, ascending. Entries that can no longer constrain a slot are pruned. */
  private readonly releases: number[] = [];
  /** A release made elsewhere (the shared log's newest slot) that local slots must follow. */
  private foreignRelease = Number.NEGATIVE_INFINITY;
  private readonly lateToleranceMs: number;

  constructor(
    private readonly rules: SlotRules,
    private readonly now: () => number = monotonicNow,
    private readonly wait: SlotWait = timerWait,
  ) {
    super();
    this.lateToleranceMs = lateToleranceMs(rules);
  }

  async acquire({ maxWaitMs, signal }: AcquireOptions): Promise<void> {
    signal?.throwIfAborted();
    const giveUpAt = this.now() + maxWaitMs;
    for (;;) {
      const now = this.now();
      this.prune(now);
      const slot = Math.max(
        nextSlot(this.releases, now, this.rules),
        this.foreignRelease + this.rules.windowMs + this.rules.safetyMarginMs,
      );
      const waitMs = slot - now;
      if (waitMs > giveUpAt - now) throw new OutboundRateLimitRefusal(waitMs);
      this.releases.push(slot);
      if (waitMs > 0) {
        try {
          await this.wait(waitMs, signal);
        } catch (error) {
          this.giveBack(slot);
          throw error;
        }
      }
      if (this.now() - slot <= this.lateToleranceMs) return;
      // Woke too late (a stalled event loop): going now could crowd the next window.
      this.giveBack(slot);
      this.lateSlotCount++;
    }
  }

  /**
   * Local slots start one whole window (plus margin) after `time` at the earliest. Taking over
   * from the shared log, whose calls up to `time` may still be going out from every replica, no
   * window then holds both shared and local calls: the cap holds through the hand-over.
   */
  follow(time: number): void {
    this.foreignRelease = Math.max(this.foreignRelease, time);
  }

  /**
   * The releases that can still share a window with a new call, as offsets from now (negative in
   * the past): what the shared log must learn when it takes over again.
   */
  recentOffsets(): number[] {
    const now = this.now();
    this.prune(now);
    return this.releases.map((release) => release - now);
  }

  private prune(now: number): void {
    const horizon = now - this.rules.windowMs - this.rules.safetyMarginMs;
    let stale = 0;
    while (stale < this.releases.length && this.releases[stale]! < horizon) stale++;
    if (stale > 0) this.releases.splice(0, stale);
  }

  /** A caller that stopped waiting frees its slot so it does not count against the window. */
  private giveBack(slot: number): void {
    const index = this.releases.lastIndexOf(slot);
    if (index >= 0) this.releases.splice(index, 1);
  }
}
