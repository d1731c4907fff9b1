/**
 * Exponential backoff with "equal jitter": half the step is fixed, half random, so retries from
 * many callers spread out yet none comes back immediately.
 */
export function retryDelayMs(attempt: number, random: () => number = Math.random): number {
  const step = Math.min(2000, 100 * 2 ** (attempt - 1));
  return step / 2 + random() * (step / 2);
}
