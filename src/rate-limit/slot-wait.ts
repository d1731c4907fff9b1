import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** Timers fire up to about a millisecond after their time even on an idle process. */
export const TIMER_GRANULARITY_MS = 2;

/** Waits `ms`, rejecting when the signal aborts: how a limiter waits for a slot (tests inject theirs). */
export type SlotWait = (ms: number, signal?: AbortSignal) => Promise<unknown>;

export const timerWait: SlotWait = (ms, signal) => sleep(ms, undefined, { signal });

/**
 * What a wait rejects with when its caller goes away: the AbortError node's own timers reject
 * with, the reason as its cause, so a caller sees the same error however far its wait had come.
 */
export function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

/** The timers a scheduler arms (tests inject theirs). */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** The clock slots are placed on: monotonic, so wall-clock steps cannot move a slot. */
export const monotonicNow = (): number => performance.now();

/** What is left of a caller's wait at `now`, given when it would rather be refused. */
export function remainingWaitMs(giveUpAt: number, now: number): number {
  return Math.max(0, giveUpAt - now);
}
