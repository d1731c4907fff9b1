import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from '@jest/globals';
import { processEventLoopLag } from './event-loop-lag.js';

/** Keeps the event loop busy for `ms`, as a saturated replica's callers would. */
function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spinning on purpose
  }
}

describe('processEventLoopLag', () => {
  it('sees a stall of the event loop that happened while it watched', async () => {
    const lateness = processEventLoopLag.watch();
    await sleep(50);
    busyFor(150);
    // The timer that was due during the stall fires before this sleep ends.
    await sleep(50);
    expect(lateness()).toBeGreaterThanOrEqual(100);
  });

  it('does not see a stall from before it started watching', async () => {
    processEventLoopLag.watch();
    busyFor(400);
    await sleep(50);
    const lateness = processEventLoopLag.watch();
    await sleep(100);
    expect(lateness()).toBeLessThan(300);
  });
});
