import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** Waits `ms`, rejecting when the signal aborts: how a limiter waits for a slot (tests inject theirs). */
export type SlotWait = (ms: number, signal?: AbortSignal) => Promise<unknown>;

export const timerWait: SlotWait = (ms, signal) => sleep(ms, undefined, { signal });

/** The clock slots are placed on: monotonic, so wall-clock steps cannot move a slot. */
export const monotonicNow = (): number => performance.now();

/** What is left of a caller's wait at `now`, given when it would rather be refused. */
export function remainingWaitMs(giveUpAt: number, now: number): number {
  return Math.max(0, giveUpAt - now);
}
