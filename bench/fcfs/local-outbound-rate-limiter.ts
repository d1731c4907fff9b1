// The first-come-first-served limiter's src/rate-limit/local-outbound-rate-limiter.ts as of a8dab26, kept as the baseline of
// npm run bench:fairness and npm run bench; only its imports differ (see bench/fcfs-gateway.ts).
import { OutboundRateLimitRefusal, type AcquireOptions } from '../../src/rate-limit/outbound-rate-limiter.js';
import { SlotLimiter, type HeldSlot } from '../../src/rate-limit/slot-limiter.js';
import { nextSlot, type SlotRules } from '../../src/rate-limit/slot-schedule.js';
import { monotonicNow, remainingWaitMs, timerWait, type SlotWait } from '../../src/rate-limit/slot-wait.js';

/**
 * The limiter for one process: a sliding log of reserved release times on the monotonic clock.
 * Safe for a single replica only; the fleet shares a Redis-backed limiter.
 */
export class LocalOutboundRateLimiter extends SlotLimiter<HeldSlot> {
  readonly mode = 'local';
  /** Reserved release times, ascending. Entries that can no longer constrain a slot are pruned. */
  private readonly releases: number[] = [];
  /** A release made elsewhere (the shared log's newest slot) that local slots must follow. */
  private foreignRelease = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly rules: SlotRules,
    now: () => number = monotonicNow,
    wait: SlotWait = timerWait,
  ) {
    super(rules, now, wait);
  }

  async acquire({ maxWaitMs, signal }: AcquireOptions): Promise<void> {
    signal?.throwIfAborted();
    // Reserved before the first await: callers get slots in the order they asked.
    await this.waitFor(this.reserve(this.now() + maxWaitMs), signal);
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

  protected replace(slot: HeldSlot): HeldSlot {
    this.release(slot);
    return this.reserve(slot.giveUpAt);
  }

  protected release(slot: HeldSlot): void {
    const index = this.releases.lastIndexOf(slot.slotAt);
    if (index >= 0) this.releases.splice(index, 1);
  }

  /** The first-come baseline as it was measured: a call counts where its slot was, however late it left. */
  protected movedToWire(): void {}

  /** Takes the next free slot, or refuses without taking one when it is too far away. */
  private reserve(giveUpAt: number): HeldSlot {
    const now = this.now();
    this.prune(now);
    const slotAt = Math.max(
      nextSlot(this.releases, now, this.rules),
      this.foreignRelease + this.rules.windowMs + this.rules.safetyMarginMs,
    );
    const waitMs = slotAt - now;
    if (waitMs > remainingWaitMs(giveUpAt, now)) throw new OutboundRateLimitRefusal(waitMs);
    this.releases.push(slotAt);
    return { slotAt, giveUpAt };
  }

  private prune(now: number): void {
    const horizon = now - this.rules.windowMs - this.rules.safetyMarginMs;
    let stale = 0;
    while (stale < this.releases.length && this.releases[stale]! < horizon) stale++;
    if (stale > 0) this.releases.splice(0, stale);
  }
}
