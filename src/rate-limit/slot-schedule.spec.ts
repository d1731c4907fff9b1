import { describe, expect, it } from '@jest/globals';
import { maxCallsInAnyWindow } from '../../test/support/call-windows.js';
import { nextSlot, spacingMs, watchWire, type SlotRules } from './slot-schedule.js';

/** A small seeded PRNG (mulberry32), so a failing run can be replayed from its seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('watchWire', () => {
  const margin30: SlotRules = { limit: 20, windowMs: 1000, safetyMarginMs: 30 };

  it('tells how far past the tolerance (the whole margin) the first write came, and nothing within it', () => {
    const overruns: number[] = [];
    watchWire(margin30, 1000, (ms) => overruns.push(ms))(1030);
    watchWire(margin30, 1000, (ms) => overruns.push(ms))(1045);
    expect(overruns).toEqual([15]);
  });

  it('counts the first write of a call only: a resend on the same slot moves nothing again', () => {
    const overruns: number[] = [];
    const wired = watchWire(margin30, 1000, (ms) => overruns.push(ms));
    wired(1020);
    wired(1090);
    expect(overruns).toEqual([]);
  });
});

describe('spacingMs', () => {
  it('spreads the window plus the margin evenly over the limit', () => {
    expect(spacingMs({ limit: 20, windowMs: 1000, safetyMarginMs: 20 })).toBe(51);
    expect(spacingMs({ limit: 4, windowMs: 1000, safetyMarginMs: 0 })).toBe(250);
    expect(spacingMs({ limit: 3, windowMs: 100, safetyMarginMs: 0 })).toBeCloseTo(100 / 3, 12);
  });
});

describe('nextSlot', () => {
  const rules: SlotRules = { limit: 4, windowMs: 1000, safetyMarginMs: 20 }; // spacing 255 ms

  it('releases at once when nothing was released before', () => {
    expect(nextSlot([], 5000, rules)).toBe(5000);
  });

  it('releases at once when the last release is at least one spacing ago', () => {
    expect(nextSlot([1000], 1255, rules)).toBe(1255);
    expect(nextSlot([1000], 9999, rules)).toBe(9999);
  });

  it('waits for one spacing after the last release', () => {
    expect(nextSlot([1000], 1000, rules)).toBe(1255);
    expect(nextSlot([1000], 1100, rules)).toBe(1255);
    // Only the last release decides the spacing.
    expect(nextSlot([0, 1000], 1100, rules)).toBe(1255);
  });

  it('counts releases already reserved in the future', () => {
    expect(nextSlot([1000, 1255, 1510], 1000, rules)).toBe(1765);
  });

  it('keeps the release `limit` places back out of the window, margin included', () => {
    // Four releases inside 10 ms (reserved before this rule applied): the fifth must wait until the
    // first has left the window plus margin, far beyond one spacing after the last.
    const dense = [1000, 1001, 1002, 1003];
    expect(nextSlot(dense, 1003, rules)).toBe(1000 + 1000 + 20);
    // With fewer than `limit` releases, only the spacing applies.
    expect(nextSlot(dense.slice(0, 3), 1003, rules)).toBe(1002 + 255);
  });

  it('with a limit of one, waits the whole window and margin after the last release', () => {
    const one: SlotRules = { limit: 1, windowMs: 1000, safetyMarginMs: 5 };
    expect(nextSlot([1000], 1000, one)).toBe(2005);
    expect(nextSlot([1000], 3000, one)).toBe(3000);
  });

  it('spreads a burst one spacing apart', () => {
    const releases: number[] = [];
    for (let i = 0; i < 12; i++) releases.push(nextSlot(releases, 0, rules));
    releases.forEach((slot, i) => expect(slot).toBeCloseTo(i * 255, 9));
  });

  describe('property: no window holds more than `limit` releases', () => {
    const seeds = [1, 2, 3, 42, 1234, 99991, 2024, 31337];

    it.each(seeds)('holds for random rules and arrivals (seed %i)', (seed) => {
      const random = seededRandom(seed);
      for (let round = 0; round < 25; round++) {
        const rules: SlotRules = {
          limit: 1 + Math.floor(random() * 30),
          windowMs: 10 + Math.floor(random() * 2000),
          safetyMarginMs: Math.floor(random() * 50),
        };
        const releases: number[] = [];
        const arrivals: number[] = [];
        let now = random() * 1000;
        for (let i = 0; i < 400; i++) {
          // Bursts (same instant), short gaps and long pauses, with fractional milliseconds.
          const kind = random();
          if (kind > 0.4) now += kind > 0.95 ? random() * rules.windowMs * 3 : random() * spacingMs(rules);
          const slot = nextSlot(releases, now, rules);
          expect(slot).toBeGreaterThanOrEqual(now);
          arrivals.push(now);
          releases.push(slot);
        }

        for (let i = 1; i < releases.length; i++) {
          expect(releases[i]!).toBeGreaterThanOrEqual(releases[i - 1]!);
        }
        // Fractional milliseconds are not exact in floating point: `anchor + windowMs - anchor` can
        // come out a few picoseconds short of windowMs. A nanosecond of tolerance absorbs that
        // rounding and nothing else (the exact check on whole numbers is below).
        const rounding = 1e-6;
        expect(maxCallsInAnyWindow(releases, rules.windowMs - rounding)).toBeLessThanOrEqual(rules.limit);
        // The margin is real headroom: even a window stretched by it holds no more.
        expect(
          maxCallsInAnyWindow(releases, rules.windowMs + rules.safetyMarginMs - rounding),
        ).toBeLessThanOrEqual(rules.limit);
      }
    });

    it.each([
      { limit: 8, windowMs: 1000, safetyMarginMs: 0 },
      { limit: 20, windowMs: 1000, safetyMarginMs: 20 },
      { limit: 1, windowMs: 50, safetyMarginMs: 0 },
    ])('holds exactly for whole-millisecond arrivals and spacing (%j)', (rules) => {
      const random = seededRandom(rules.limit * 1000 + rules.windowMs);
      const releases: number[] = [];
      let now = 0;
      for (let i = 0; i < 2000; i++) {
        if (random() > 0.5) now += Math.floor(random() * 2 * spacingMs(rules));
        releases.push(nextSlot(releases, now, rules));
      }
      expect(maxCallsInAnyWindow(releases, rules.windowMs)).toBeLessThanOrEqual(rules.limit);
      expect(maxCallsInAnyWindow(releases, rules.windowMs + rules.safetyMarginMs)).toBeLessThanOrEqual(
        rules.limit,
      );
      // The limit is reached, so the check above is not vacuous.
      expect(maxCallsInAnyWindow(releases, rules.windowMs + rules.safetyMarginMs)).toBe(rules.limit);
    });

    it('the window check used above does catch an over-full window', () => {
      expect(maxCallsInAnyWindow([0, 10, 999.9], 1000)).toBe(3);
      expect(maxCallsInAnyWindow([0, 10, 1000], 1000)).toBe(2);
    });

    it('does not delay calls that arrive further apart than the spacing', () => {
      const random = seededRandom(7);
      const rules: SlotRules = { limit: 20, windowMs: 1000, safetyMarginMs: 20 };
      const releases: number[] = [];
      let now = 0;
      for (let i = 0; i < 500; i++) {
        now += spacingMs(rules) + random() * 100;
        expect(nextSlot(releases, now, rules)).toBe(now);
        releases.push(now);
      }
    });
  });
});
