import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { RedisClock } from './redis-clock.js';

/** Redis's clock reads local time + OFFSET (a wall clock far from a monotonic one). */
const OFFSET = 1_795_000_000_000;

/** Half the width of the clock's bounds: how far `toLocal` may be off (read from its private state). */
function uncertaintyMs(clock: RedisClock): number {
  const { lowest, highest } = clock as unknown as { lowest: number; highest: number };
  return (highest - lowest) / 2;
}

describe('RedisClock', () => {
  it('refuses to map a time before it has seen one answer', () => {
    expect(() => new RedisClock().toLocal(OFFSET)).toThrow(/before any observation/);
  });

  it('places the server reading in the middle of the one round trip it has seen', () => {
    const clock = new RedisClock();
    // Sent at 100, answered at 110: Redis read its clock somewhere in between.
    clock.observe(105 + OFFSET, 100, 110);
    expect(clock.toLocal(105 + OFFSET)).toBe(105);
    expect(uncertaintyMs(clock)).toBe(5);
  });

  it('keeps what a quick round trip taught it when later answers are read late', () => {
    const clock = new RedisClock();
    clock.observe(1_000.2 + OFFSET, 1_000, 1_000.4);
    // The event loop was busy: Redis ran the script at 2_000.2 but the answer was read at 2_060.
    clock.observe(2_000.2 + OFFSET, 2_000, 2_060);
    // Off by at most the drift allowed over the second in between (1 ms), not by the 60 ms.
    expect(Math.abs(clock.toLocal(2_000.2 + OFFSET) - 2_000.2)).toBeLessThan(1.2);
    expect(uncertaintyMs(clock)).toBeLessThan(1.2);
  });

  it('lets a later quick round trip tighten the bounds left by slow ones', () => {
    const clock = new RedisClock();
    clock.observe(1_020 + OFFSET, 1_000, 1_050);
    expect(uncertaintyMs(clock)).toBe(25);
    clock.observe(2_000.1 + OFFSET, 2_000, 2_000.2);
    expect(uncertaintyMs(clock)).toBeCloseTo(0.1, 3);
    expect(clock.toLocal(3_000 + OFFSET)).toBeCloseTo(3_000, 1);
  });

  it('widens old bounds by the largest drift it allows, so a slowly drifting server clock is followed', () => {
    const clock = new RedisClock();
    clock.observe(0.1 + OFFSET, 0, 0.2);
    // 100 s later the server clock is 50 ms ahead (500 ppm, what NTP slews by at most).
    clock.observe(100_000.1 + 50 + OFFSET, 100_000, 100_000.2);
    expect(clock.toLocal(100_000.1 + 50 + OFFSET)).toBeCloseTo(100_000.1, 1);
  });

  it('starts over from the latest answer when the server clock stepped', () => {
    const clock = new RedisClock();
    clock.observe(0.1 + OFFSET, 0, 0.2);
    // One second later the server clock is 5 s behind (an NTP step, or a failover to another host).
    clock.observe(1_000.1 - 5_000 + OFFSET, 1_000, 1_000.2);
    expect(clock.toLocal(1_000.1 - 5_000 + OFFSET)).toBeCloseTo(1_000.1, 3);
    expect(uncertaintyMs(clock)).toBeCloseTo(0.1, 3);
  });

  it('never places a server time further from the truth than the uncertainty it reports', () => {
    const roundTrip = fc.record({
      gapMs: fc.double({ min: 0, max: 5_000, noNaN: true }),
      uplinkMs: fc.double({ min: 0, max: 50, noNaN: true }),
      downlinkMs: fc.double({ min: 0, max: 200, noNaN: true }),
    });
    fc.assert(
      fc.property(fc.array(roundTrip, { minLength: 1, maxLength: 40 }), (trips) => {
        const clock = new RedisClock();
        let local = 0;
        for (const { gapMs, uplinkMs, downlinkMs } of trips) {
          const sentAt = (local += gapMs);
          const serverReadAt = (local += uplinkMs);
          const answeredAt = (local += downlinkMs);
          clock.observe(serverReadAt + OFFSET, sentAt, answeredAt);
          const error = Math.abs(clock.toLocal(serverReadAt + OFFSET) - serverReadAt);
          // Floating point: times near 1.8e12 carry about 2.4e-4 ms of rounding.
          if (error > uncertaintyMs(clock) + 1e-3) return false;
          if (uncertaintyMs(clock) > (answeredAt - sentAt) / 2 + 1e-3) return false;
        }
        return true;
      }),
      { numRuns: 500 },
    );
  });
});
