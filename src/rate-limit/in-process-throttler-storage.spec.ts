import { describe, expect, it } from '@jest/globals';
import { InProcessThrottlerStorage, quotaRecord } from './in-process-throttler-storage.js';

/** A clock the test moves by hand. */
class ManualClock {
  constructor(public time = 10_000) {}
  readonly now = (): number => this.time;
}

function storage() {
  const clock = new ManualClock();
  return { clock, storage: new InProcessThrottlerStorage(clock.now) };
}

describe('quotaRecord', () => {
  it.each([
    [0.5, 1],
    [999, 1],
    [1000, 1],
    [1000.5, 2],
    [4400, 5],
    [-20, 1],
  ])('turns %p ms into %p whole seconds (at least one)', (ms, seconds) => {
    expect(quotaRecord(false, 3, ms, ms)).toEqual({
      totalHits: 3,
      timeToExpire: seconds,
      isBlocked: true,
      timeToBlockExpire: seconds,
    });
  });

  it('has no block to expire for an admitted request', () => {
    expect(quotaRecord(true, 1, 4000, 4000)).toEqual({
      totalHits: 1,
      timeToExpire: 4,
      isBlocked: false,
      timeToBlockExpire: 0,
    });
  });
});

describe('InProcessThrottlerStorage', () => {
  it('admits `limit` hits per window, then refuses with a Retry-After in whole seconds', async () => {
    const { storage: s, clock } = storage();
    const ttl = 5000;

    const admitted = [];
    for (let i = 0; i < 3; i++) {
      admitted.push(await s.increment('client-a', ttl, 3));
      clock.time += 100;
    }
    expect(admitted).toEqual([1, 2, 3].map((hits) => ({
      totalHits: hits,
      timeToExpire: 5, // the first hit leaves the window 5000, 4900, 4800 ms later
      isBlocked: false,
      timeToBlockExpire: 0,
    })));

    // At 10 300 the first hit (10 000) leaves the window in 4700 ms.
    const refused = await s.increment('client-a', ttl, 3);
    expect(refused).toEqual({ totalHits: 3, timeToExpire: 5, isBlocked: true, timeToBlockExpire: 5 });
  });

  it('gives a Retry-After of at least one second', async () => {
    const { storage: s, clock } = storage();
    await s.increment('k', 1000, 1);
    clock.time += 999.5; // the hit leaves the window in half a millisecond
    const refused = await s.increment('k', 1000, 1);
    expect(refused.isBlocked).toBe(true);
    expect(refused.timeToBlockExpire).toBe(1);
  });

  it('does not record refused hits: a client knocking while blocked is admitted once its oldest hit leaves', async () => {
    const { storage: s, clock } = storage();
    const ttl = 1000;
    await s.increment('k', ttl, 2); // 10 000
    clock.time += 400;
    await s.increment('k', ttl, 2); // 10 400

    // Knocking every 50 ms until just before the first hit leaves the window (at 11 000 exactly).
    for (clock.time = 10_450; clock.time < 11_000; clock.time += 50) {
      const knock = await s.increment('k', ttl, 2);
      expect(knock.isBlocked).toBe(true);
      expect(knock.totalHits).toBe(2);
    }
    clock.time = 11_000;
    const admitted = await s.increment('k', ttl, 2);
    expect(admitted).toMatchObject({ isBlocked: false, totalHits: 2 });

    // The window now holds 10 400 and 11 000: blocked until 11 400.
    clock.time = 11_399;
    expect(await s.increment('k', ttl, 2)).toMatchObject({ isBlocked: true, timeToBlockExpire: 1 });
    clock.time = 11_400;
    expect(await s.increment('k', ttl, 2)).toMatchObject({ isBlocked: false, totalHits: 2 });
  });

  it('with a lower limit than before, waits until enough hits have left the window', async () => {
    const { storage: s, clock } = storage();
    const ttl = 5000;
    for (const at of [10_000, 11_500, 12_000]) {
      clock.time = at;
      await s.increment('k', ttl, 3);
    }
    clock.time = 12_100;
    // Limit 2 with three hits in the window: two must leave, the second at 16 500 (4400 ms away).
    expect(await s.increment('k', ttl, 2)).toMatchObject({ isBlocked: true, totalHits: 3, timeToBlockExpire: 5 });
    clock.time = 16_499;
    expect((await s.increment('k', ttl, 2)).isBlocked).toBe(true);
    clock.time = 16_500;
    expect(await s.increment('k', ttl, 2)).toMatchObject({ isBlocked: false, totalHits: 2 });
  });

  it('keeps different keys independent', async () => {
    const { storage: s } = storage();
    await s.increment('client-a', 1000, 1);
    expect((await s.increment('client-a', 1000, 1)).isBlocked).toBe(true);
    expect(await s.increment('client-b', 1000, 1)).toMatchObject({ isBlocked: false, totalHits: 1 });
    expect((await s.increment('client-b', 1000, 1)).isBlocked).toBe(true);
  });

  it('keeps different storages (different processes) independent', async () => {
    const clock = new ManualClock();
    const one = new InProcessThrottlerStorage(clock.now);
    const other = new InProcessThrottlerStorage(clock.now);
    await one.increment('k', 1000, 1);
    expect((await other.increment('k', 1000, 1)).isBlocked).toBe(false);
  });

  it('frees the whole quota once the window has passed', async () => {
    const { storage: s, clock } = storage();
    for (let i = 0; i < 3; i++) await s.increment('k', 1000, 3);
    expect((await s.increment('k', 1000, 3)).isBlocked).toBe(true);
    clock.time += 1000;
    expect(await s.increment('k', 1000, 3)).toMatchObject({ isBlocked: false, totalHits: 1 });
  });

  it('uses the monotonic clock by default', async () => {
    const s = new InProcessThrottlerStorage();
    expect(await s.increment('k', 60_000, 1)).toMatchObject({ isBlocked: false, totalHits: 1 });
    const refused = await s.increment('k', 60_000, 1);
    expect(refused.isBlocked).toBe(true);
    expect(Number.isInteger(refused.timeToBlockExpire)).toBe(true);
    expect(refused.timeToBlockExpire).toBeGreaterThanOrEqual(1);
    expect(refused.timeToBlockExpire).toBeLessThanOrEqual(60);
  });
});
