/**
 * RedisRoundTrip and grantTiming: how far ahead a replica asks the scheduler to grant, and when
 * it takes Redis as too slow to schedule through (and back). Pure: no Redis, no timers.
 */
import { describe, expect, it } from '@jest/globals';
import { grantTiming, RECOVERY_VERDICT_SAMPLES, RedisRoundTrip, SLOW_VERDICT_SAMPLES, type GrantTimingRules } from './redis-round-trip.js';
import { spacingMs } from './slot-schedule.js';

/** The default budget: 20 calls per 1000 ms + a 30 ms margin, a 60 ms base horizon, slow past 75 ms. */
const RULES: GrantTimingRules = {
  limit: 20,
  windowMs: 1000,
  safetyMarginMs: 30,
  horizonMs: 60,
  slowRoundTripMs: 75,
};
const SPACING = spacingMs(RULES);
const SLOW = RULES.slowRoundTripMs;
/** No timing is derived from more than twice the slow round trip. */
const CAP = 2 * SLOW;

/** A RedisRoundTrip that saw `samples`, in order. */
function seen(...samples: number[]): RedisRoundTrip {
  const roundTrip = new RedisRoundTrip();
  for (const sample of samples) roundTrip.record(sample);
  return roundTrip;
}

const times = (count: number, ms: number): number[] => Array<number>(count).fill(ms);

describe('grantTiming', () => {
  it('asks a spacing plus the dispatch allowance (in 10 ms steps), and a lead of a timer granularity, for a Redis next door (or before any sample)', () => {
    // spacing 51.5 + 0 + 5, up to the next 10 ms: 60, the base; the lead: half of nothing + 2.
    expect(SPACING).toBe(51.5);
    expect(grantTiming(RULES, undefined)).toEqual({ leadMs: 2, horizonMs: 60 });
    expect(grantTiming(RULES, 0)).toEqual({ leadMs: 2, horizonMs: 60 });
  });

  it.each([
    // [high round trip, lead, horizon]
    [2, 3, 60],
    [10, 7, 70],
    [50, 27, 110],
    [100, 52, 160],
    [CAP, 77, 210],
  ])('at a %d ms round trip: lead %d ms, horizon %d ms', (roundTripMs, leadMs, horizonMs) => {
    expect(grantTiming(RULES, roundTripMs)).toEqual({ leadMs, horizonMs });
  });

  it.each([0, undefined, 2, 10, 30, 50, 74, 75, 100, 149, 150])(
    'at a %s ms round trip: the lead covers half of it, the horizon a spacing and all of it, the lead stays inside the horizon',
    (roundTripMs) => {
      const { leadMs, horizonMs } = grantTiming(RULES, roundTripMs);
      const roundTrip = roundTripMs ?? 0;
      // A slot no closer than the answer's way back (half a round trip) …
      expect(leadMs).toBeGreaterThanOrEqual(roundTrip / 2);
      // … and a grant another replica made for this one's callers collected before its slot.
      expect(horizonMs).toBeGreaterThanOrEqual(SPACING + roundTrip);
      expect(horizonMs).toBeGreaterThanOrEqual(RULES.horizonMs);
      // A horizon with room for at least one slot past the lead.
      expect(leadMs).toBeLessThan(horizonMs);
    },
  );

  it('grows with the round trip, never shrinks', () => {
    let previous = grantTiming(RULES, 0);
    for (let roundTripMs = 1; roundTripMs <= 400; roundTripMs++) {
      const timing = grantTiming(RULES, roundTripMs);
      expect(timing.leadMs).toBeGreaterThanOrEqual(previous.leadMs);
      expect(timing.horizonMs).toBeGreaterThanOrEqual(previous.horizonMs);
      previous = timing;
    }
  });

  it('derives nothing from more than twice the slow round trip: 1000 ms asks what 150 ms asks', () => {
    const capped = grantTiming(RULES, CAP);
    expect(grantTiming(RULES, 1000)).toEqual(capped);
    expect(grantTiming(RULES, 60_000)).toEqual(capped);
    expect(capped.leadMs).toBeLessThan(capped.horizonMs);
    // Past the cap the horizon no longer covers the round trip: the replica is off the scheduler by then.
    expect(grantTiming(RULES, 1000).horizonMs).toBeLessThan(SPACING + 1000);
  });

  it('keeps the base horizon when the spacing is short (a large budget)', () => {
    const wide: GrantTimingRules = { ...RULES, limit: 1000 };
    expect(grantTiming(wide, 0)).toEqual({ leadMs: 2, horizonMs: 60 });
    expect(grantTiming(wide, 10).horizonMs).toBe(60);
  });

  it('reads the high end of what a RedisRoundTrip saw', () => {
    // 17 quick round trips and 3 slow ones: the 90th percentile is a slow one.
    const roundTrip = seen(...times(17, 1), 70, 80, 90);
    expect(roundTrip.highMs()).toBe(80);
    expect(grantTiming(RULES, roundTrip.highMs())).toEqual(grantTiming(RULES, 80));
  });
});

describe('RedisRoundTrip', () => {
  it('has no typical or high round trip before the first sample', () => {
    const roundTrip = new RedisRoundTrip();
    expect(roundTrip.typicalMs()).toBeUndefined();
    expect(roundTrip.highMs()).toBeUndefined();
    expect(roundTrip.isSlow(SLOW)).toBe(false);
    expect(roundTrip.hasRecovered(SLOW)).toBe(false);
  });

  it(`needs ${SLOW_VERDICT_SAMPLES} samples for a verdict of slowness`, () => {
    const roundTrip = seen(...times(SLOW_VERDICT_SAMPLES - 1, 200));
    expect(roundTrip.typicalMs()).toBe(200);
    expect(roundTrip.isSlow(SLOW)).toBe(false);
    roundTrip.record(200);
    expect(roundTrip.isSlow(SLOW)).toBe(true);
  });

  it(`needs ${RECOVERY_VERDICT_SAMPLES} samples for a verdict of recovery`, () => {
    const roundTrip = seen(...times(RECOVERY_VERDICT_SAMPLES - 1, 1));
    expect(roundTrip.hasRecovered(SLOW)).toBe(false);
    roundTrip.record(1);
    expect(roundTrip.hasRecovered(SLOW)).toBe(true);
  });

  it('counts the samples since resetVerdict only: the round trips before a change of mode decide nothing after it', () => {
    const roundTrip = seen(...times(20, 200));
    expect(roundTrip.isSlow(SLOW)).toBe(true);
    roundTrip.resetVerdict();
    // The same slow samples are still kept, but none came since the reset.
    expect(roundTrip.typicalMs()).toBe(200);
    expect(roundTrip.isSlow(SLOW)).toBe(false);
    for (let i = 1; i < SLOW_VERDICT_SAMPLES; i++) {
      roundTrip.record(200);
      expect(roundTrip.isSlow(SLOW)).toBe(false);
    }
    roundTrip.record(200);
    expect(roundTrip.isSlow(SLOW)).toBe(true);

    // Quick again, reset on going slow: recovery waits for its own samples too.
    roundTrip.resetVerdict();
    for (let i = 1; i < RECOVERY_VERDICT_SAMPLES; i++) {
      roundTrip.record(1);
      expect(roundTrip.hasRecovered(SLOW)).toBe(false);
    }
    roundTrip.record(1);
    expect(roundTrip.hasRecovered(SLOW)).toBe(true);
  });

  it('reads the median: one outlier does not flip a verdict', () => {
    // One quick round trip among slow ones: still slow.
    expect(seen(...times(SLOW_VERDICT_SAMPLES - 1, 200), 1).isSlow(SLOW)).toBe(true);
    expect(seen(1, ...times(SLOW_VERDICT_SAMPLES - 1, 200)).isSlow(SLOW)).toBe(true);
    // One very slow one among quick ones: not slow, and recovered.
    const quick = seen(...times(SLOW_VERDICT_SAMPLES - 1, 5), 5000);
    expect(quick.isSlow(SLOW)).toBe(false);
    expect(quick.typicalMs()).toBe(5);
    expect(seen(...times(RECOVERY_VERDICT_SAMPLES - 1, 5), 5000).hasRecovered(SLOW)).toBe(true);
    // One quick one among slow ones does not make a recovery.
    expect(seen(...times(RECOVERY_VERDICT_SAMPLES - 1, 200), 1).hasRecovered(SLOW)).toBe(false);
  });

  it('takes slowness from the quicker round trips: half of them stretched by a busy event loop is not a slow Redis', () => {
    const half = SLOW_VERDICT_SAMPLES / 2;
    expect(seen(...times(half, 200), ...times(half, 20)).isSlow(SLOW)).toBe(false);
    expect(seen(...times(SLOW_VERDICT_SAMPLES - 2, 200), ...times(2, 20)).isSlow(SLOW)).toBe(true);
    expect(seen(...times(SLOW_VERDICT_SAMPLES - 3, 200), ...times(3, 20)).isSlow(SLOW)).toBe(false);
  });

  it('reads only the most recent samples: a Redis that turned slow is slow, one that turned quick has recovered', () => {
    const turnedSlow = seen(...times(20, 1), ...times(SLOW_VERDICT_SAMPLES, 200));
    expect(turnedSlow.isSlow(SLOW)).toBe(true);
    const turnedQuick = seen(...times(20, 200), ...times(RECOVERY_VERDICT_SAMPLES, 1));
    expect(turnedQuick.hasRecovered(SLOW)).toBe(true);
  });

  it('holds both verdicts between half the threshold and the threshold (hysteresis)', () => {
    for (const ms of [SLOW / 2 + 0.5, 50, SLOW]) {
      const roundTrip = seen(...times(20, ms));
      expect(roundTrip.isSlow(SLOW)).toBe(false);
      expect(roundTrip.hasRecovered(SLOW)).toBe(false);
    }
    // The lines themselves: over the threshold is slow, at most half of it is recovered.
    expect(seen(...times(20, SLOW + 0.5)).isSlow(SLOW)).toBe(true);
    expect(seen(...times(20, SLOW / 2)).hasRecovered(SLOW)).toBe(true);
  });

  it('stays slow while the round trip settles between the lines, and recovers only under half', () => {
    // The failover's cycle: slow, reset, a round trip that improves to 50 ms …
    const roundTrip = seen(...times(SLOW_VERDICT_SAMPLES, 120));
    expect(roundTrip.isSlow(SLOW)).toBe(true);
    roundTrip.resetVerdict();
    for (let i = 0; i < 20; i++) {
      roundTrip.record(50);
      expect(roundTrip.hasRecovered(SLOW)).toBe(false);
    }
    // … and then under half of the threshold.
    for (let i = 0; i < RECOVERY_VERDICT_SAMPLES; i++) roundTrip.record(20);
    expect(roundTrip.hasRecovered(SLOW)).toBe(true);
  });

  it('ignores samples that are not a duration: NaN, infinities, negatives', () => {
    const roundTrip = seen(...times(SLOW_VERDICT_SAMPLES - 1, 200));
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1, -0.001]) roundTrip.record(bad);
    // Still one short of a verdict, and the figures are the good samples'.
    expect(roundTrip.isSlow(SLOW)).toBe(false);
    expect(roundTrip.typicalMs()).toBe(200);
    expect(roundTrip.highMs()).toBe(200);
    roundTrip.record(200);
    expect(roundTrip.isSlow(SLOW)).toBe(true);

    const onlyBad = seen(Number.NaN, -5, Number.POSITIVE_INFINITY, Number.NaN);
    expect(onlyBad.typicalMs()).toBeUndefined();
    expect(onlyBad.highMs()).toBeUndefined();
    expect(onlyBad.hasRecovered(SLOW)).toBe(false);
    // A zero round trip is a duration.
    expect(seen(...times(RECOVERY_VERDICT_SAMPLES, 0)).hasRecovered(SLOW)).toBe(true);
  });

  it('keeps a bounded window: the high round trip forgets a spike once 20 later ones came', () => {
    const roundTrip = seen(500, 500, ...times(18, 3));
    expect(roundTrip.highMs()).toBe(500);
    roundTrip.record(3);
    expect(roundTrip.highMs()).toBe(3);
  });

  it("takes none of the event loop's own lateness for a slow path: a saturated replica with a quick Redis stays", () => {
    const busy = new RedisRoundTrip();
    // Every round trip 120 ms as this replica saw it, 115 of them its own loop running late.
    for (let i = 0; i < SLOW_VERDICT_SAMPLES; i++) busy.record(120, 115);
    expect(busy.isSlow(SLOW)).toBe(false);
    // Grants must still reach it in time: its timing reads the round trips whole.
    expect(busy.highMs()).toBe(120);

    const slowPath = new RedisRoundTrip();
    for (let i = 0; i < SLOW_VERDICT_SAMPLES; i++) slowPath.record(120, 5);
    expect(slowPath.isSlow(SLOW)).toBe(true);
  });

  it('reads recovery from the path too', () => {
    const roundTrip = seen(...times(SLOW_VERDICT_SAMPLES, 200));
    expect(roundTrip.isSlow(SLOW)).toBe(true);
    roundTrip.resetVerdict();
    for (let i = 0; i < RECOVERY_VERDICT_SAMPLES; i++) roundTrip.record(90, 80);
    expect(roundTrip.hasRecovered(SLOW)).toBe(true);
  });
});
