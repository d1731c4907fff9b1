import { performance } from 'node:perf_hooks';

/** How often the loop's punctuality is sampled: lags shorter than this are not seen, nor do they matter here. */
const TICK_MS = 20;
/** Ticks remembered: a watch longer than this (5 s) sees the last ones only. */
const REMEMBERED_TICKS = 256;

/**
 * How late this process ran its callbacks while something was under way: the part of a round
 * trip that was the process's own (a busy or starved event loop), not the network's or the
 * server's. A reply that arrives while the loop is busy is handled only after a timer that was due
 * meanwhile, so the lateness of the timers that fired during a round trip bounds that part.
 */
export interface EventLoopLag {
  /** Starts watching; the function returned gives the longest lateness seen since (ms). */
  watch(): () => number;
}

/** One sampling timer for the process, started on first use and never holding the process open. */
class SampledEventLoopLag implements EventLoopLag {
  private readonly lags = new Float64Array(REMEMBERED_TICKS);
  private ticks = 0;
  private timer: NodeJS.Timeout | undefined;
  private dueAt = 0;

  watch(): () => number {
    this.start();
    const from = this.ticks;
    return () => {
      let longest = 0;
      for (let tick = Math.max(from, this.ticks - REMEMBERED_TICKS); tick < this.ticks; tick++) {
        longest = Math.max(longest, this.lags[tick % REMEMBERED_TICKS]!);
      }
      return longest;
    };
  }

  private start(): void {
    if (this.timer !== undefined) return;
    this.dueAt = performance.now() + TICK_MS;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.lags[this.ticks % REMEMBERED_TICKS] = Math.max(0, now - this.dueAt);
      this.ticks++;
      this.dueAt = now + TICK_MS;
    }, TICK_MS);
    this.timer.unref();
  }
}

/** The process's event loop, sampled. */
export const processEventLoopLag: EventLoopLag = new SampledEventLoopLag();
