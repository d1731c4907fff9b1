import { spacingMs, type SlotRules } from './slot-schedule.js';
import { TIMER_GRANULARITY_MS } from './slot-wait.js';

/** How many recent round trips the figures are read from. */
const KEPT = 20;
/** A verdict on slowness needs this many round trips since the last change of mode. */
export const SLOW_VERDICT_SAMPLES = 8;
/** A verdict on recovery needs this many. */
export const RECOVERY_VERDICT_SAMPLES = 4;
/**
 * What a replica's dispatch may run late by, on top of a round trip, before a grant it collects
 * for another replica's ticket arrives after its slot (a busy event loop; the late-slot trade
 * catches the rest).
 */
const DISPATCH_ALLOWANCE_MS = 5;
/**
 * Horizons are asked for in steps: a longer one applies only a lease after it was asked for, and
 * a round trip that wobbles would otherwise ask for a slightly longer one at every call.
 */
const HORIZON_STEP_MS = 10;

/**
 * The round trips of this replica's recent calls to the scheduler in Redis, as it saw them
 * (sending to handling the answer: the network, Redis, and this process's event loop). Grant
 * timing reads them whole: a grant must reach this process in time, however it is delayed. The
 * verdicts on slowness read them without the event loop's own lateness: a replica saturated by
 * its callers would otherwise take its own busy loop for a slow Redis and leave the fleet's
 * budget for its smaller share, just when it is busiest.
 */
export class RedisRoundTrip {
  private readonly samples: number[] = [];
  /** The same round trips less the event loop's lateness meanwhile: the path's part (network and Redis). */
  private readonly pathSamples: number[] = [];
  private sinceReset = 0;

  /** A round trip of `ms`, during which this process's event loop ran up to `ownLagMs` late. */
  record(ms: number, ownLagMs = 0): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.samples.push(ms);
    this.pathSamples.push(Math.max(0, ms - Math.max(0, ownLagMs)));
    if (this.samples.length > KEPT) {
      this.samples.shift();
      this.pathSamples.shift();
    }
    this.sinceReset++;
  }

  /** Starts a new verdict: the round trips before a change of mode decide nothing after it. */
  resetVerdict(): void {
    this.sinceReset = 0;
  }

  /** The typical round trip: the median of the last `samples`; undefined before any. */
  typicalMs(samples = SLOW_VERDICT_SAMPLES): number | undefined {
    return quantile(this.samples.slice(-samples), 0.5);
  }

  /** The round trip most calls stay under: the 90th percentile of the recent ones; undefined before any. */
  highMs(): number | undefined {
    return quantile(this.samples, 0.9);
  }

  /**
   * Slow: even the quicker paths of the last SLOW_VERDICT_SAMPLES since the last change of mode
   * (their lower quartile) are over `thresholdMs`. A stall the lateness does not account for
   * lengthens some round trips, never all: only a slow path does.
   */
  isSlow(thresholdMs: number): boolean {
    if (this.sinceReset < SLOW_VERDICT_SAMPLES) return false;
    return quantile(this.pathSamples.slice(-SLOW_VERDICT_SAMPLES), 0.25)! > thresholdMs;
  }

  /** Recovered: the median path of the last RECOVERY_VERDICT_SAMPLES since the last change of mode is at most half of `thresholdMs`. */
  hasRecovered(thresholdMs: number): boolean {
    if (this.sinceReset < RECOVERY_VERDICT_SAMPLES) return false;
    return quantile(this.pathSamples.slice(-RECOVERY_VERDICT_SAMPLES), 0.5)! <= thresholdMs / 2;
  }
}

/** How far ahead this replica asks the scheduler to grant, from its round trip to Redis. */
export interface GrantTiming {
  /** No slot closer than this to Redis's now: the answer must reach this replica before its slot. */
  readonly leadMs: number;
  /** No slot further than this: grants another replica makes for this one's callers are collected in time. */
  readonly horizonMs: number;
}

export interface GrantTimingRules extends SlotRules {
  /** The shortest horizon: the one for a Redis next door, and the one a new member may use at once. */
  readonly horizonMs: number;
  /** Past this typical round trip the replica leaves the scheduler; no timing is derived from more than twice it. */
  readonly slowRoundTripMs: number;
}

/**
 * The lead covers the answer's way back (half a round trip, at the high end) and a timer's
 * granularity. The horizon covers a dispatch: the replica whose callers wait calls the script
 * when a slot enters the horizon and at least once a spacing, so a grant another replica made
 * reaches it within a spacing and a round trip, plus what a busy event loop adds.
 */
export function grantTiming(rules: GrantTimingRules, highRoundTripMs: number | undefined): GrantTiming {
  const roundTrip = Math.min(highRoundTripMs ?? 0, 2 * rules.slowRoundTripMs);
  const needed = Math.ceil((spacingMs(rules) + roundTrip + DISPATCH_ALLOWANCE_MS) / HORIZON_STEP_MS) * HORIZON_STEP_MS;
  const horizonMs = Math.max(rules.horizonMs, needed);
  const leadMs = Math.min(horizonMs, Math.ceil(roundTrip / 2) + TIMER_GRANULARITY_MS);
  return { leadMs, horizonMs };
}

function quantile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
