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
 * How long after its slot a call may still go out. Later than this, it would spend more than half
 * of the safety margin that absorbs the trip to the vendor's door, and could crowd the window after
 * its own: the caller takes a new slot instead (a stalled event loop or a descheduled pod wakes
 * every waiting timer at once, which would otherwise release a burst).
 */
export function lateToleranceMs(rules: SlotRules): number {
  return Math.max(rules.safetyMarginMs / 2, TIMER_GRANULARITY_MS);
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
