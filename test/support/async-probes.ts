/**
 * Probes for asynchronous behaviour in tests, without fixed sleeps:
 *
 * - `waitFor(predicate, options)` / `until(condition, what, timeoutMs)` poll a condition with a
 *   deadline and fail with a message naming what was awaited.
 * - `settledState(promise)` tells whether a promise settled within the current turn (its own
 *   microtasks and ticks, before any timer could fire) or is still pending.
 *
 * Used by the unit specs under src/, the end-to-end specs and the process harnesses, so it
 * depends on node built-ins only.
 */
import { performance } from 'node:perf_hooks';

/** Polls until the predicate holds, failing after a deadline (no fixed sleeps in tests). */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  { timeoutMs = 5_000, intervalMs = 10, what = 'condition' } = {},
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (performance.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * `waitFor` in the shape the specs read best: polls `condition` every 10 ms until it holds; fails
 * naming `what` after `timeoutMs` (default 10 s, generous for a Redis client to reconnect).
 */
export function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  return waitFor(condition, { what, timeoutMs });
}

export type SettledState = 'resolved' | 'rejected' | 'pending';

/**
 * Whether the promise settled within the current turn (microtasks and ticks, up to the next
 * setImmediate), or is still 'pending'. Lets a test assert that something failed or went through
 * at once, before any timer could fire. Never rejects: a rejection is reported as 'rejected'
 * (and counts as handled).
 */
export async function settledState(promise: Promise<unknown>): Promise<SettledState> {
  const marker = Symbol('pending');
  const result = await Promise.race([
    promise.then(
      () => 'resolved' as const,
      () => 'rejected' as const,
    ),
    new Promise<typeof marker>((resolve) => setImmediate(() => resolve(marker))),
  ]);
  return result === marker ? 'pending' : result;
}
