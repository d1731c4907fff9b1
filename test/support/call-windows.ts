/**
 * The most calls in any window of a given length: what the vendor's "20 calls per second" limit
 * is about, measured on arrival times (the fake's tests, the fleet figures, the limiter specs).
 */

/**
 * The largest number of `times` that fall in any window of `windowMs`. Half-open windows
 * [a, a + windowMs): two calls exactly `windowMs` apart are not in the same window, matching the
 * fake's QPS check. O(n log n) for the sort, then O(n) two-pointer.
 */
export function maxCallsInAnyWindow(times: readonly number[], windowMs: number): number {
  return densestWindow(times, windowMs).count;
}

/** The window of maxCallsInAnyWindow: how many calls it holds and the time of its first (NaN without calls). */
export function densestWindow(times: readonly number[], windowMs: number): { count: number; start: number } {
  const sorted = [...times].sort((a, b) => a - b);
  let best = { count: 0, start: Number.NaN };
  let left = 0;
  for (let right = 0; right < sorted.length; right++) {
    while (sorted[right]! - sorted[left]! >= windowMs) left++;
    if (right - left + 1 > best.count) best = { count: right - left + 1, start: sorted[left]! };
  }
  return best;
}
