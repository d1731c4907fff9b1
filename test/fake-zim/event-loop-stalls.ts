/**
 * Stalls of this process's event loop, as a fake vendor sees them: a timer due every `tickMs` that
 * fires `thresholdMs` or more late means nothing ran on the loop meanwhile, so the requests that
 * reached the socket then were stamped late, together. The fake's record of arrival times bunches
 * them although the network delivered them spaced; a fleet spec reads these stalls to say whose a
 * crowded window is (see test/support/vendor-door.ts).
 */
import { performance } from 'node:perf_hooks';

export interface EventLoopStall {
  /** Wall clock (ms) when the loop ran again. */
  endedAt: number;
  /** How long past the timer's due time the loop ran again (ms): the stall, give or take a tick. */
  ms: number;
}

export interface EventLoopStallReport {
  watching: boolean;
  thresholdMs: number;
  stalls: EventLoopStall[];
}

/** Enough for an hour of stalls every few seconds; older ones are dropped first. */
const KEPT_STALLS = 2_000;

export class EventLoopStallWatch {
  private readonly stalls: EventLoopStall[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly tickMs = 5,
    private readonly thresholdMs = 10,
  ) {}

  start(): void {
    if (this.timer) return;
    let due = performance.now() + this.tickMs;
    const tick = (): void => {
      const now = performance.now();
      const late = now - due;
      if (late >= this.thresholdMs) {
        this.stalls.push({ endedAt: Date.now(), ms: Math.round(late) });
        if (this.stalls.length > KEPT_STALLS) this.stalls.shift();
      }
      due = now + this.tickMs;
      this.timer = setTimeout(tick, this.tickMs).unref();
    };
    // Unref'd: the watch never keeps the process alive by itself.
    this.timer = setTimeout(tick, this.tickMs).unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  report(): EventLoopStallReport {
    return { watching: this.timer !== undefined, thresholdMs: this.thresholdMs, stalls: [...this.stalls] };
  }
}
