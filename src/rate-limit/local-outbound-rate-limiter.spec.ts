import { describe, expect, it } from '@jest/globals';
import { settledState } from '../../test/support/async-probes.js';
import { LocalOutboundRateLimiter } from './local-outbound-rate-limiter.js';
import { OutboundRateLimitRefusal } from './outbound-rate-limiter.js';
import type { SlotRules } from './slot-schedule.js';

/** A clock the test moves by hand. */
class ManualClock {
  constructor(public time = 10_000) {}
  readonly now = (): number => this.time;
}

interface PendingWait {
  ms: number;
  signal?: AbortSignal;
  release: () => void;
}

/**
 * A wait the test controls: records how long the limiter asked to wait, resolves on release(),
 * and rejects, as node's timers do, when the signal aborts.
 */
class ManualWaits {
  readonly asked: PendingWait[] = [];

  readonly wait = (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.asked.push({
        ms,
        signal,
        release: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      });
    });

  get durations(): number[] {
    return this.asked.map((w) => w.ms);
  }
}

function limiter(rules: SlotRules) {
  const clock = new ManualClock();
  const waits = new ManualWaits();
  return { clock, waits, limiter: new LocalOutboundRateLimiter(rules, clock.now, waits.wait) };
}

const NO_LIMIT_ON_WAIT = { maxWaitMs: 60_000 };

describe('OutboundRateLimitRefusal', () => {
  it.each([
    [0.4, 1],
    [200, 1],
    [999.9, 1],
    [1000, 1],
    [1000.1, 2],
    [2500, 3],
    [60_000, 60],
  ])('for a wait of %p ms asks to retry after %p s', (waitMs, seconds) => {
    const refusal = new OutboundRateLimitRefusal(waitMs);
    expect(refusal.status).toBe(429);
    expect(refusal.waitMs).toBe(waitMs);
    expect(refusal.details.retryAfterSeconds).toBe(seconds);
  });
});

describe('LocalOutboundRateLimiter', () => {
  const rules: SlotRules = { limit: 4, windowMs: 1000, safetyMarginMs: 20 };
  const spacing = (rules.windowMs + rules.safetyMarginMs) / rules.limit; // 255 ms

  it('lets the first call through without waiting', async () => {
    const { limiter: l, waits } = limiter(rules);
    await l.acquire(NO_LIMIT_ON_WAIT);
    expect(waits.asked).toHaveLength(0);
  });

  it('spaces a burst one spacing apart, on the injected clock', async () => {
    const { limiter: l, waits } = limiter(rules);
    const burst = Array.from({ length: 6 }, () => l.acquire(NO_LIMIT_ON_WAIT));
    expect(waits.durations).toEqual([1, 2, 3, 4, 5].map((i) => i * spacing));
    // Each waiter goes on only once its wait is over.
    expect(await settledState(burst[0]!)).toBe('resolved');
    expect(await settledState(burst[1]!)).toBe('pending');
    waits.asked[0]!.release();
    expect(await settledState(burst[1]!)).toBe('resolved');
    expect(await settledState(burst[2]!)).toBe('pending');
    waits.asked.slice(1).forEach((w) => w.release());
    await Promise.all(burst);
  });

  it('measures waits from the current time, not from the time of the first call', async () => {
    const { limiter: l, waits, clock } = limiter(rules);
    await l.acquire(NO_LIMIT_ON_WAIT);
    clock.time += 100;
    void l.acquire(NO_LIMIT_ON_WAIT);
    expect(waits.durations).toEqual([spacing - 100]);
  });

  it('frees the window as the clock moves on', async () => {
    const { limiter: l, waits, clock } = limiter(rules);
    await l.acquire(NO_LIMIT_ON_WAIT);
    clock.time += spacing;
    await l.acquire(NO_LIMIT_ON_WAIT);
    clock.time += rules.windowMs * 10;
    await l.acquire(NO_LIMIT_ON_WAIT);
    expect(waits.asked).toHaveLength(0);
  });

  describe('when the wait is longer than the caller may wait', () => {
    it('refuses with OutboundRateLimitRefusal carrying the wait and Retry-After', async () => {
      const { limiter: l } = limiter({ limit: 1, windowMs: 2400, safetyMarginMs: 100 });
      await l.acquire(NO_LIMIT_ON_WAIT);
      const refusal = await l.acquire({ maxWaitMs: 1000 }).catch((error: unknown) => error);
      expect(refusal).toBeInstanceOf(OutboundRateLimitRefusal);
      expect((refusal as OutboundRateLimitRefusal).waitMs).toBe(2500);
      expect((refusal as OutboundRateLimitRefusal).details.retryAfterSeconds).toBe(3);
      expect((refusal as OutboundRateLimitRefusal).status).toBe(429);
    });

    it('gives a Retry-After of at least one second for a short wait', async () => {
      const { limiter: l } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      const refusal = (await l.acquire({ maxWaitMs: 0 }).catch((e: unknown) => e)) as OutboundRateLimitRefusal;
      expect(refusal).toBeInstanceOf(OutboundRateLimitRefusal);
      expect(refusal.waitMs).toBe(spacing);
      expect(refusal.details.retryAfterSeconds).toBe(1);
    });

    it('does not take a slot: the next caller gets the wait the refused one was offered', async () => {
      const { limiter: l, waits } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      for (let i = 0; i < 5; i++) {
        await expect(l.acquire({ maxWaitMs: spacing - 1 })).rejects.toBeInstanceOf(OutboundRateLimitRefusal);
      }
      void l.acquire(NO_LIMIT_ON_WAIT);
      expect(waits.durations).toEqual([spacing]);
    });

    it('accepts a wait exactly as long as the caller may wait', async () => {
      const { limiter: l, waits } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      const pending = l.acquire({ maxWaitMs: spacing });
      expect(waits.durations).toEqual([spacing]);
      waits.asked[0]!.release();
      await expect(pending).resolves.toBeUndefined();
    });
  });

  describe('aborts', () => {
    it('gives the slot of an aborted waiter back', async () => {
      const { limiter: l, waits } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      const controller = new AbortController();
      const aborted = l.acquire({ ...NO_LIMIT_ON_WAIT, signal: controller.signal });
      expect(waits.durations).toEqual([spacing]);

      controller.abort(new Error('caller went away'));
      await expect(aborted).rejects.toThrow('caller went away');

      void l.acquire(NO_LIMIT_ON_WAIT);
      // The same slot again, not the one after it.
      expect(waits.durations).toEqual([spacing, spacing]);
    });

    it('gives back only its own slot, keeping the ones reserved after it', async () => {
      const { limiter: l, waits } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      const controller = new AbortController();
      const aborted = l.acquire({ ...NO_LIMIT_ON_WAIT, signal: controller.signal }); // slot +255
      void l.acquire(NO_LIMIT_ON_WAIT); // slot +510
      controller.abort();
      await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
      void l.acquire(NO_LIMIT_ON_WAIT);
      expect(waits.durations).toEqual([spacing, 2 * spacing, 3 * spacing]);
    });

    it('refuses an already aborted caller without taking a slot', async () => {
      const { limiter: l, waits } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      const signal = AbortSignal.abort(new Error('gone before asking'));
      await expect(l.acquire({ ...NO_LIMIT_ON_WAIT, signal })).rejects.toThrow('gone before asking');
      expect(waits.asked).toHaveLength(0);
      void l.acquire(NO_LIMIT_ON_WAIT);
      expect(waits.durations).toEqual([spacing]);
    });

    it('with the default (real) wait, an abort ends the wait and frees the slot', async () => {
      // Slots one minute apart: only the abort can end this wait before the test times out.
      const l = new LocalOutboundRateLimiter({ limit: 1, windowMs: 60_000, safetyMarginMs: 0 });
      await l.acquire(NO_LIMIT_ON_WAIT);
      const controller = new AbortController();
      const waiting = l.acquire({ maxWaitMs: 120_000, signal: controller.signal });
      expect(await settledState(waiting)).toBe('pending');
      controller.abort();
      await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
      // Its slot is free again: the next caller is offered it (about a minute), not two minutes.
      const refusal = (await l.acquire({ maxWaitMs: 0 }).catch((e: unknown) => e)) as OutboundRateLimitRefusal;
      expect(refusal).toBeInstanceOf(OutboundRateLimitRefusal);
      expect(refusal.waitMs).toBeLessThanOrEqual(60_000);
      expect(refusal.waitMs).toBeGreaterThan(0);
    });
  });

  describe('a caller that wakes too late for its slot', () => {
    // rules: spacing 255 ms, margin 20 ms, so a caller may go out at most 10 ms after its slot.
    it('goes out within the tolerance as usual', async () => {
      const { limiter: l, waits, clock } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      const second = l.acquire(NO_LIMIT_ON_WAIT);
      clock.time += spacing + 10;
      waits.asked[0]!.release();
      await second;
      expect(l.lateSlots()).toBe(0);
      expect(l.recentOffsets()).toEqual([-(spacing + 10), -10]);
    });

    it('gives the slot back and takes a new one, counted as a late slot', async () => {
      const { limiter: l, waits, clock } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      const second = l.acquire(NO_LIMIT_ON_WAIT);
      // A stalled event loop: the timer fires 50 ms after the slot.
      clock.time += spacing + 50;
      waits.asked[0]!.release();
      await second;
      expect(l.lateSlots()).toBe(1);
      // The late slot is gone; the call went out in a new slot, now, one spacing after the first.
      expect(l.recentOffsets()).toEqual([-(spacing + 50), 0]);
    });

    it('is refused when no new slot fits in the wait it had left, keeping no slot', async () => {
      const one = { limit: 1, windowMs: 1000, safetyMarginMs: 20 };
      const { limiter: l, waits, clock } = limiter(one);
      await l.acquire(NO_LIMIT_ON_WAIT);
      const late = l.acquire({ maxWaitMs: 1100 });
      clock.time += 1020 + 100;
      // Meanwhile another caller took the next slot.
      const next = l.acquire(NO_LIMIT_ON_WAIT);
      waits.asked[0]!.release();

      await expect(late).rejects.toBeInstanceOf(OutboundRateLimitRefusal);
      expect(l.lateSlots()).toBe(1);
      expect(l.recentOffsets()).toEqual([920]);
      waits.asked[1]!.release();
      await next;
    });
  });

  describe('follow', () => {
    const span = rules.windowMs + rules.safetyMarginMs; // 1020 ms

    it('puts the first local slot one whole window (plus margin) after the followed time', async () => {
      const { limiter: l, waits, clock } = limiter(rules);
      l.follow(clock.time + 500); // the shared log's newest slot, half a second ahead
      void l.acquire(NO_LIMIT_ON_WAIT);
      void l.acquire(NO_LIMIT_ON_WAIT);
      expect(waits.durations).toEqual([500 + span, 500 + span + spacing]);
    });

    it('counts a followed time in the past only while it is less than one window ago', async () => {
      const { limiter: l, waits, clock } = limiter(rules);
      l.follow(clock.time - 100);
      void l.acquire(NO_LIMIT_ON_WAIT);
      expect(waits.durations).toEqual([span - 100]);

      const other = limiter(rules);
      other.limiter.follow(other.clock.time - span);
      await other.limiter.acquire(NO_LIMIT_ON_WAIT);
      expect(other.waits.asked).toHaveLength(0);
    });

    it('ignores a time older than one it already follows', async () => {
      const { limiter: l, waits, clock } = limiter(rules);
      l.follow(clock.time + 500);
      l.follow(clock.time + 100);
      l.follow(Number.NEGATIVE_INFINITY);
      void l.acquire(NO_LIMIT_ON_WAIT);
      expect(waits.durations).toEqual([500 + span]);
    });

    it('keeps the later of the followed time and its own releases', async () => {
      const { limiter: l, waits, clock } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT); // own release at now
      void l.acquire(NO_LIMIT_ON_WAIT); // own release at now + spacing
      l.follow(clock.time - span + 10); // holds local slots back only until now + 10: changes nothing
      void l.acquire(NO_LIMIT_ON_WAIT);
      expect(waits.durations).toEqual([spacing, 2 * spacing]);
    });

    it('refuses a caller that cannot wait until one window after the followed time', async () => {
      const { limiter: l, clock } = limiter(rules);
      l.follow(clock.time + 1000);
      const refusal = (await l.acquire({ maxWaitMs: 1000 }).catch((e: unknown) => e)) as OutboundRateLimitRefusal;
      expect(refusal).toBeInstanceOf(OutboundRateLimitRefusal);
      expect(refusal.waitMs).toBe(1000 + span);
    });
  });

  describe('recentOffsets', () => {
    it('is empty before any release', () => {
      const { limiter: l } = limiter(rules);
      expect(l.recentOffsets()).toEqual([]);
    });

    it('lists past and future releases as offsets from now', async () => {
      const { limiter: l, clock } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT); // release at 10 000
      void l.acquire(NO_LIMIT_ON_WAIT); // release at 10 255
      void l.acquire(NO_LIMIT_ON_WAIT); // release at 10 510
      expect(l.recentOffsets()).toEqual([0, spacing, 2 * spacing]);
      clock.time += 300;
      expect(l.recentOffsets()).toEqual([-300, spacing - 300, 2 * spacing - 300]);
    });

    it('drops releases that can no longer share a window (plus margin) with a new call', async () => {
      const { limiter: l, clock } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT); // 10 000
      clock.time += 300;
      await l.acquire(NO_LIMIT_ON_WAIT); // 10 300
      const span = rules.windowMs + rules.safetyMarginMs; // 1020

      clock.time = 10_000 + span; // the first release is exactly one span ago: still counts
      expect(l.recentOffsets()).toEqual([-span, 300 - span]);
      clock.time += 1;
      expect(l.recentOffsets()).toEqual([300 - span - 1]);
      clock.time = 10_300 + span + 1;
      expect(l.recentOffsets()).toEqual([]);
    });

    it('leaves out the slot of a waiter that gave up', async () => {
      const { limiter: l } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      const controller = new AbortController();
      const aborted = l.acquire({ ...NO_LIMIT_ON_WAIT, signal: controller.signal });
      expect(l.recentOffsets()).toEqual([0, spacing]);
      controller.abort();
      await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
      expect(l.recentOffsets()).toEqual([0]);
    });

    it('leaves out refused callers and the followed time', async () => {
      const { limiter: l, clock } = limiter(rules);
      l.follow(clock.time + 100);
      await expect(l.acquire({ maxWaitMs: 0 })).rejects.toBeInstanceOf(OutboundRateLimitRefusal);
      expect(l.recentOffsets()).toEqual([]);
    });
  });

  describe('property: the released calls never overfill a window', () => {
    function seededRandom(seed: number): () => number {
      let s = seed >>> 0;
      return () => {
        s = (s + 0x6d2b79f5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    }

    it.each([11, 22, 33, 44, 55])(
      'with random arrivals, refusals and aborts (seed %i)',
      async (seed) => {
        const random = seededRandom(seed);
        const rules: SlotRules = { limit: 5, windowMs: 1000, safetyMarginMs: 20 };
        const { limiter: l, waits, clock } = limiter(rules);
        const released: number[] = [];
        let refused = 0;
        let aborted = 0;

        for (let i = 0; i < 600; i++) {
          if (random() < 0.6) clock.time += Math.floor(random() * 400);
          const arrival = clock.time;
          const controller = new AbortController();
          const before = waits.asked.length;
          const acquired = l.acquire({ maxWaitMs: Math.floor(random() * 2500), signal: controller.signal });
          const asked = waits.asked[before];
          if (asked === undefined) {
            // Released at once or refused; find out which.
            const outcome = await acquired.then(
              () => 'released',
              (error: unknown) => {
                expect(error).toBeInstanceOf(OutboundRateLimitRefusal);
                return 'refused';
              },
            );
            if (outcome === 'released') released.push(arrival);
            else refused++;
          } else if (random() < 0.25) {
            controller.abort();
            await expect(acquired).rejects.toMatchObject({ name: 'AbortError' });
            aborted++;
          } else {
            asked.release();
            await acquired;
            released.push(arrival + asked.ms);
          }
        }

        expect(refused).toBeGreaterThan(0);
        expect(aborted).toBeGreaterThan(0);
        const sorted = released.sort((a, b) => a - b);
        for (let right = 0, left = 0; right < sorted.length; right++) {
          while (sorted[right]! - sorted[left]! >= rules.windowMs) left++;
          expect(right - left + 1).toBeLessThanOrEqual(rules.limit);
        }
      },
    );
  });
});
