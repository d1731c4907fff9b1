import { TIMER_GRANULARITY_MS } from './slot-wait.js';

/**
 * Pure slot arithmetic shared by every limiter mode: given the release times already handed out
 * (sorted, oldest first), the next time a call may be released so that
 *   - no window of `windowMs` holds more than `limit` releases, and
 *   - releases are at least `(windowMs + safetyMarginMs) / limit` apart,
 * which spreads a burst through the window instead of releasing it all in one millisecond, so
 * jitter between our clock and the vendor's door cannot push a 21st call into its window.
 */
export interface SlotRules {
  limit: number;
  windowMs: number;
  safetyMarginMs: number;
}

/**
 * How long after its slot a call may still go out, and reach the wire, and count at its slot: the
 * whole safety margin. Later, the slot one window after it would share a vendor window with it
 * even on a path without jitter. Within it, the call spends margin the path's jitter would
 * otherwise have; charging that part too (from half the margin, as waking late once was) cost
 * several per cent of the budget on a busy node, a traded slot each time, for a risk the margin
 * already names. A caller that wakes later than this takes a new slot (a stalled event loop wakes
 * every waiting timer at once, which would otherwise release a burst); one whose request reaches
 * the wire later has its slot moved by the excess (watchWire).
 */
export function lateToleranceMs(rules: SlotRules): number {
  return Math.max(rules.safetyMarginMs, TIMER_GRANULARITY_MS);
}

/**
 * Watches one slot's call on its way to the wire: its first write that came later than the late
 * tolerance is told to `overran`, with how far past the tolerance it came. The call must count from
 * there on, or the slot one window after it lands inside the vendor's window with it.
 */
export function watchWire(rules: SlotRules, slotAt: number, overran: (overrunMs: number) => void): (wiredAt: number) => void {
  let written = false;
  return (wiredAt) => {
    if (written) return;
    written = true;
    const overrunMs = wiredAt - slotAt - lateToleranceMs(rules);
    if (overrunMs > 0) overran(overrunMs);
  };
}

export function spacingMs(rules: SlotRules): number {
  return (rules.windowMs + rules.safetyMarginMs) / rules.limit;
}

export function nextSlot(releases: readonly number[], now: number, rules: SlotRules): number {
  let slot = now;
  const last = releases[releases.length - 1];
  if (last !== undefined) slot = Math.max(slot, last + spacingMs(rules));
  if (releases.length >= rules.limit) {
    // The release `limit` places back must have left the window before this one enters it.
    const anchor = releases[releases.length - rules.limit]!;
    slot = Math.max(slot, anchor + rules.windowMs + rules.safetyMarginMs);
  }
  return slot;
}
