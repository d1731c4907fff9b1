import { describe, expect, it } from '@jest/globals';
import { settledState } from '../../test/support/async-probes.js';
import { maxCallsInAnyWindow } from '../../test/support/call-windows.js';
import { LocalOutboundRateLimiter, type LocalBudgetRules } from './local-outbound-rate-limiter.js';
import { OutboundRateLimitRefusal, type AcquireOptions, type SlotReadiness } from './outbound-rate-limiter.js';
import type { SlotRules } from './slot-schedule.js';
import type { Timers } from './slot-wait.js';

/** A clock and timers the test moves by hand: `advance` fires every timer that comes due, in order. */
class ManualTime implements Timers {
  time = 10_000;
  private pending: Array<{ at: number; callback: () => void; seq: number }> = [];
  private seq = 0;
  readonly now = (): number => this.time;

  setTimeout(callback: () => void, ms: number): unknown {
    const timer = { at: this.time + ms, callback, seq: ++this.seq };
    this.pending.push(timer);
    return timer;
  }

  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((timer) => timer !== handle);
  }

  /** Moves the clock on by `ms`, firing what comes due (each at its own time, unless `late`: all at the end). */
  async advance(ms: number, { late = false } = {}): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      // What the callers do with the last release happens before the clock moves again.
      await settle();
      const due = this.pending.filter((timer) => timer.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.pending = this.pending.filter((timer) => timer !== due);
      this.time = late ? end : Math.max(this.time, due.at);
      due.callback();
    }
    this.time = end;
    await settle();
  }
}

/** Lets every pending promise callback run (they would before any real timer fires). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function limiter(rules: LocalBudgetRules) {
  const time = new ManualTime();
  return { time, limiter: new LocalOutboundRateLimiter(rules, time.now, time) };
}

/** Records when each caller was let go, on the manual clock. */
function track(l: LocalOutboundRateLimiter, time: ManualTime, options: AcquireOptions) {
  const entry: { releasedAt?: number; error?: unknown; promise: Promise<void> } = { promise: Promise.resolve() };
  entry.promise = l.acquire(options).then(
    () => {
      entry.releasedAt = time.time;
    },
    (error: unknown) => {
      entry.error = error;
    },
  );
  return entry;
}

const NO_LIMIT_ON_WAIT = { maxWaitMs: 60_000 };
const rules: SlotRules = { limit: 4, windowMs: 1000, safetyMarginMs: 20 };
const spacing = (rules.windowMs + rules.safetyMarginMs) / rules.limit; // 255 ms
const span = rules.windowMs + rules.safetyMarginMs; // 1020 ms

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

  it('says which share was spent and when a slot is expected', () => {
    const refusal = new OutboundRateLimitRefusal(2400, "client web's share of the fleet's vendor budget (interactive)");
    expect(refusal.publicMessage).toBe(
      "The vendor call budget is spent: client web's share of the fleet's vendor budget (interactive) has no free slot " +
        'within the wait; the next is expected in about 3 s',
    );
  });
});

describe('LocalOutboundRateLimiter', () => {
  it('lets the first call through at once', async () => {
    const { limiter: l } = limiter(rules);
    expect(await settledState(l.acquire(NO_LIMIT_ON_WAIT))).toBe('resolved');
  });

  it('lets a burst go one spacing apart, each caller when its slot comes', async () => {
    const { limiter: l, time } = limiter(rules);
    const burst = Array.from({ length: 6 }, () => track(l, time, NO_LIMIT_ON_WAIT));
    await time.advance(5 * spacing);
    await Promise.all(burst.map((entry) => entry.promise));
    expect(burst.map((entry) => entry.releasedAt! - 10_000)).toEqual([0, 1, 2, 3].map((i) => i * spacing).concat([span, span + spacing]));
  });

  it('frees the window as the clock moves on', async () => {
    const { limiter: l, time } = limiter(rules);
    await l.acquire(NO_LIMIT_ON_WAIT);
    await time.advance(spacing);
    expect(await settledState(l.acquire(NO_LIMIT_ON_WAIT))).toBe('resolved');
    await time.advance(rules.windowMs * 10);
    expect(await settledState(l.acquire(NO_LIMIT_ON_WAIT))).toBe('resolved');
  });

  describe('when the wait is longer than the caller may wait', () => {
    it('refuses at once with OutboundRateLimitRefusal carrying the wait and Retry-After', async () => {
      const { limiter: l } = limiter({ limit: 1, windowMs: 2400, safetyMarginMs: 100 });
      await l.acquire(NO_LIMIT_ON_WAIT);
      const refusal = await l.acquire({ maxWaitMs: 1000, client: 'web' }).catch((error: unknown) => error);
      expect(refusal).toBeInstanceOf(OutboundRateLimitRefusal);
      expect((refusal as OutboundRateLimitRefusal).waitMs).toBe(2500);
      expect((refusal as OutboundRateLimitRefusal).details.retryAfterSeconds).toBe(3);
      expect((refusal as OutboundRateLimitRefusal).publicMessage).toMatch(/this replica's vendor budget \(client web, interactive\)/);
    });

    it('does not take a slot: the next caller gets the slot the refused one was offered', async () => {
      const { limiter: l, time } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      for (let i = 0; i < 5; i++) {
        await expect(l.acquire({ maxWaitMs: spacing - 1 })).rejects.toBeInstanceOf(OutboundRateLimitRefusal);
      }
      const next = track(l, time, NO_LIMIT_ON_WAIT);
      await time.advance(spacing);
      await next.promise;
      expect(next.releasedAt).toBe(10_000 + spacing);
    });

    it('accepts a wait exactly as long as the caller may wait', async () => {
      const { limiter: l, time } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      const pending = track(l, time, { maxWaitMs: spacing });
      await time.advance(spacing);
      await pending.promise;
      expect(pending.error).toBeUndefined();
    });

    it('refuses a queued caller whose wait ran out, and serves the one behind it in its place', async () => {
      const { limiter: l, time } = limiter({ ...rules, limit: 1 });
      await l.acquire(NO_LIMIT_ON_WAIT);
      const impatient = track(l, time, { maxWaitMs: 1500 });
      const patient = track(l, time, NO_LIMIT_ON_WAIT);
      // The first in line (slot at +1020) is served; the second's slot would be at +2040.
      await time.advance(1500);
      await impatient.promise;
      expect(impatient.releasedAt).toBe(10_000 + span);
      await time.advance(1000);
      await patient.promise;
      expect(patient.releasedAt).toBe(10_000 + 2 * span);
    });
  });

  describe('aborts', () => {
    it('takes an aborted waiter out of the queue: the next caller gets its slot', async () => {
      const { limiter: l, time } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      const controller = new AbortController();
      const aborted = track(l, time, { ...NO_LIMIT_ON_WAIT, signal: controller.signal });
      const next = track(l, time, NO_LIMIT_ON_WAIT);
      controller.abort(new Error('caller went away'));
      await aborted.promise;
      expect(aborted.error).toMatchObject({ name: 'AbortError', cause: new Error('caller went away') });
      await time.advance(spacing);
      await next.promise;
      expect(next.releasedAt).toBe(10_000 + spacing);
    });

    it('refuses an already aborted caller without taking a slot', async () => {
      const { limiter: l, time } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      const signal = AbortSignal.abort(new Error('gone before asking'));
      await expect(l.acquire({ ...NO_LIMIT_ON_WAIT, signal })).rejects.toMatchObject({ name: 'AbortError' });
      const next = track(l, time, NO_LIMIT_ON_WAIT);
      await time.advance(spacing);
      await next.promise;
      expect(next.releasedAt).toBe(10_000 + spacing);
    });

    it('with the real clock and timers, an abort ends the wait', async () => {
      // One call a minute: only the abort can end this wait before the test times out.
      const l = new LocalOutboundRateLimiter({ limit: 1, windowMs: 60_000, safetyMarginMs: 0 });
      await l.acquire(NO_LIMIT_ON_WAIT);
      const controller = new AbortController();
      const waiting = l.acquire({ maxWaitMs: 120_000, signal: controller.signal });
      expect(await settledState(waiting)).toBe('pending');
      controller.abort();
      await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    });
  });

  describe('fairness between clients and levels', () => {
    it('serves a client that arrives later, with nothing waiting, before a flooder’s queued callers', async () => {
      const { limiter: l, time } = limiter(rules);
      const flooder = Array.from({ length: 8 }, () => track(l, time, { ...NO_LIMIT_ON_WAIT, client: 'flood' }));
      await time.advance(spacing / 2);
      const light = track(l, time, { ...NO_LIMIT_ON_WAIT, client: 'light' });
      await time.advance(3 * spacing);
      await light.promise;
      // The flooder's first went at once and counts as its service (as in the fleet's scheduler):
      // the light client takes the next slot, before the flooder's second.
      expect(light.releasedAt).toBe(10_000 + spacing);
      await time.advance(10 * spacing);
      await Promise.all(flooder.map((entry) => entry.promise));
    });

    it('orders two flooding clients by weight, 3:1', async () => {
      const { limiter: l, time } = limiter({ ...rules, limit: 100, weightOf: (client) => (client === 'heavy' ? 3 : 1) });
      const order: string[] = [];
      const waiting = ['heavy', 'light'].flatMap((client) =>
        Array.from({ length: 12 }, () => l.acquire({ ...NO_LIMIT_ON_WAIT, client }).then(() => order.push(client))),
      );
      await time.advance(60 * span);
      await Promise.all(waiting);
      const firstSixteen = order.slice(0, 16);
      expect(firstSixteen.filter((client) => client === 'heavy')).toHaveLength(12);
    });

    it('serves interactive first, and gives batch its minimum share while both wait', async () => {
      const { limiter: l, time } = limiter({ ...rules, limit: 100, batchMinShare: 0.25 });
      const order: string[] = [];
      const waiting = (['batch', 'interactive'] as const).flatMap((priority) =>
        Array.from({ length: 40 }, () =>
          l.acquire({ ...NO_LIMIT_ON_WAIT, client: priority, priority }).then(() => order.push(priority)),
        ),
      );
      await time.advance(100 * span);
      await Promise.all(waiting);
      // While both wait (the first 40 + a few slots), one slot in four goes to batch.
      const whileBoth = order.slice(1, 41);
      expect(whileBoth.filter((priority) => priority === 'batch')).toHaveLength(10);
      // And batch gets everything once interactive is served.
      expect(order.slice(-20).every((priority) => priority === 'batch')).toBe(true);
    });

    it('reports the fair share of each waiting client', async () => {
      const { limiter: l } = limiter({ ...rules, weightOf: (client) => (client === 'heavy' ? 3 : 1) });
      await l.acquire(NO_LIMIT_ON_WAIT);
      void l.acquire({ ...NO_LIMIT_ON_WAIT, client: 'heavy' });
      void l.acquire({ ...NO_LIMIT_ON_WAIT, client: 'light' });
      const perSecond = (rules.limit * 1000) / span;
      expect(await l.fairShares()).toEqual(
        expect.arrayContaining([
          { client: 'heavy', priority: 'interactive', perSecond: (perSecond * 3) / 4 },
          { client: 'light', priority: 'interactive', perSecond: perSecond / 4 },
        ]),
      );
    });
  });

  describe('a stalled event loop', () => {
    it('lets the slots that passed go one spacing apart from the moment it runs, counted as a late dispatch', async () => {
      const { limiter: l, time } = limiter(rules);
      const callers = Array.from({ length: 3 }, () => track(l, time, NO_LIMIT_ON_WAIT));
      // Nothing ran for three spacings: the timer fires at the end.
      await time.advance(3 * spacing, { late: true });
      expect(l.lateSlots()).toBe(1);
      await time.advance(spacing);
      await Promise.all(callers.map((entry) => entry.promise));
      expect(callers.map((entry) => entry.releasedAt! - 10_000)).toEqual([0, 3 * spacing, 4 * spacing]);
    });
  });

  describe('a call that reaches the wire late (the process starved between its slot and the write)', () => {
    /** A caller that writes its request `lateMs` after it was let go (manual clock). */
    function writesLate(time: ManualTime, lateMs: number): SlotReadiness & { overran: () => void } {
      let wired: ((at: number) => void) | undefined;
      return {
        expect: () => undefined,
        ready: () => true,
        taken: (report) => (wired = report),
        overran: () => wired!(time.time + lateMs),
      };
    }

    it('counts the call where it left: the slot a window later is placed a span after that, less the tolerance', async () => {
      const { limiter: l, time } = limiter(rules);
      const late = writesLate(time, 40);
      await l.acquire({ ...NO_LIMIT_ON_WAIT, readiness: late });
      late.overran();
      expect(l.lateWires()).toBe(1);
      expect(l.recentReleases().map((release) => release.at - 10_000)).toEqual([20]);
      const rest = Array.from({ length: 4 }, () => track(l, time, NO_LIMIT_ON_WAIT));
      await time.advance(2 * span);
      await Promise.all(rest.map((entry) => entry.promise));
      // The first went 40 ms late, 20 past the tolerance (the whole 20 ms margin): it counts from 20,
      // so the calls behind it keep their spacing from there, and the one a window on is a span
      // after it. The budget loses those 20 ms, not a slot.
      expect(rest.map((entry) => entry.releasedAt! - 10_000)).toEqual([20 + spacing, 20 + 2 * spacing, 20 + 3 * spacing, 20 + span]);
    });

    it('moves nothing for a write within the tolerance, nor for a second write of the same call', async () => {
      const { limiter: l, time } = limiter(rules);
      const punctual = writesLate(time, rules.safetyMarginMs);
      await l.acquire({ ...NO_LIMIT_ON_WAIT, readiness: punctual });
      punctual.overran();
      // A resend of the same request (its connection was closed as idle) is not a new departure.
      await time.advance(100);
      punctual.overran();
      expect(l.lateWires()).toBe(0);
      const rest = Array.from({ length: 4 }, () => track(l, time, NO_LIMIT_ON_WAIT));
      await time.advance(2 * span);
      await Promise.all(rest.map((entry) => entry.promise));
      expect(rest.at(-1)!.releasedAt! - 10_000).toBe(span);
    });
  });

  describe('a caller not ready at its slot (no warm vendor connection)', () => {
    /** Ready from `readyAt` on (manual clock); records what it was told. */
    function readyFrom(time: ManualTime, readyAt: number): SlotReadiness & { expected: number[]; asked: number } {
      const readiness = {
        expected: [] as number[],
        asked: 0,
        expect: (slotAt: number) => void readiness.expected.push(slotAt),
        ready: () => {
          readiness.asked++;
          return time.time >= readyAt;
        },
      };
      return readiness;
    }

    it('keeps the slot free and lets the caller go once it is ready, counted as an unready slot', async () => {
      const { limiter: l, time } = limiter(rules);
      const readiness = readyFrom(time, 10_040);
      const caller = track(l, time, { ...NO_LIMIT_ON_WAIT, readiness });
      await time.advance(100);
      await caller.promise;
      // Asked at the slot (now) and every few ms after, let go the first time it was ready.
      expect(caller.releasedAt).toBeGreaterThanOrEqual(10_040);
      expect(caller.releasedAt).toBeLessThan(10_050);
      expect(l.unreadySlots()).toBeGreaterThanOrEqual(1);
      // Told its slot when it queued, and again when it went: that one is the slot it is timed from.
      expect(readiness.expected).toEqual([10_000, caller.releasedAt]);
      // Its release is the one slot taken: the next caller goes one spacing after it.
      const next = track(l, time, NO_LIMIT_ON_WAIT);
      await time.advance(spacing);
      await next.promise;
      expect(next.releasedAt! - caller.releasedAt!).toBe(spacing);
    });

    it('takes nothing from the callers behind it, and is refused when it is not ready within its wait', async () => {
      const { limiter: l, time } = limiter(rules);
      const never = readyFrom(time, Number.POSITIVE_INFINITY);
      const stuck = track(l, time, { maxWaitMs: 300, readiness: never });
      await time.advance(400);
      await stuck.promise;
      expect(stuck.error).toBeInstanceOf(OutboundRateLimitRefusal);
      // No slot was spent on it.
      expect(l.recentReleases()).toEqual([]);
      expect(await settledState(l.acquire(NO_LIMIT_ON_WAIT))).toBe('resolved');
    });

    it('goes at once when it is ready and nothing waits', async () => {
      const { limiter: l, time } = limiter(rules);
      const readiness = readyFrom(time, 0);
      expect(await settledState(l.acquire({ ...NO_LIMIT_ON_WAIT, readiness }))).toBe('resolved');
      expect(readiness.asked).toBe(1);
      expect(l.unreadySlots()).toBe(0);
      // Told its slot (now), as every granted caller is.
      expect(readiness.expected).toEqual([time.time]);
    });
  });

  describe('notBefore', () => {
    it('holds every local slot back until the time it is given', async () => {
      const { limiter: l, time } = limiter(rules);
      l.notBefore(time.time + 500);
      const first = track(l, time, NO_LIMIT_ON_WAIT);
      const second = track(l, time, NO_LIMIT_ON_WAIT);
      await time.advance(500 + spacing);
      await Promise.all([first.promise, second.promise]);
      expect([first.releasedAt! - 10_000, second.releasedAt! - 10_000]).toEqual([500, 500 + spacing]);
    });

    it('keeps the latest time it was given, and changes nothing once that has passed', async () => {
      const { limiter: l, time } = limiter(rules);
      l.notBefore(time.time + 500);
      l.notBefore(time.time + 100);
      l.notBefore(Number.NEGATIVE_INFINITY);
      expect(await settledState(l.acquire(NO_LIMIT_ON_WAIT))).toBe('pending');
      const other = limiter(rules);
      other.limiter.notBefore(other.time.time - 1);
      expect(await settledState(other.limiter.acquire(NO_LIMIT_ON_WAIT))).toBe('resolved');
    });

    it('refuses a caller that cannot wait that long', async () => {
      const { limiter: l, time } = limiter(rules);
      l.notBefore(time.time + 1000);
      const refusal = (await l.acquire({ maxWaitMs: 999 }).catch((e: unknown) => e)) as OutboundRateLimitRefusal;
      expect(refusal).toBeInstanceOf(OutboundRateLimitRefusal);
      expect(refusal.waitMs).toBe(1000);
    });
  });

  describe('recentReleases', () => {
    it('is empty before any release', () => {
      expect(limiter(rules).limiter.recentReleases()).toEqual([]);
    });

    it('lists the releases as offsets from now, and drops those that can no longer share a window', async () => {
      const { limiter: l, time } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT); // 10 000
      await time.advance(300);
      await l.acquire(NO_LIMIT_ON_WAIT); // 10 300
      expect(l.recentReleases().map((release) => release.offsetMs)).toEqual([-300, 0]);
      await time.advance(span - 300); // the first release is exactly one span ago: still counts
      expect(l.recentReleases().map((release) => release.offsetMs)).toEqual([-span, 300 - span]);
      await time.advance(1);
      expect(l.recentReleases().map((release) => release.offsetMs)).toEqual([300 - span - 1]);
    });

    it('leaves out queued and refused callers', async () => {
      const { limiter: l, time } = limiter(rules);
      await l.acquire(NO_LIMIT_ON_WAIT);
      void l.acquire(NO_LIMIT_ON_WAIT);
      await expect(l.acquire({ maxWaitMs: 0 })).rejects.toBeInstanceOf(OutboundRateLimitRefusal);
      expect(l.recentReleases().map((release) => release.offsetMs)).toEqual([0]);
      await time.advance(spacing);
      expect(l.recentReleases().map((release) => release.offsetMs)).toEqual([-spacing, 0]);
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

    it.each([11, 22, 33, 44, 55])('with random arrivals, clients, levels, refusals and aborts (seed %i)', async (seed) => {
      const random = seededRandom(seed);
      const budget: SlotRules = { limit: 5, windowMs: 1000, safetyMarginMs: 20 };
      const { limiter: l, time } = limiter(budget);
      const entries: Array<ReturnType<typeof track>> = [];
      for (let i = 0; i < 600; i++) {
        if (random() < 0.6) await time.advance(Math.floor(random() * 400));
        const controller = new AbortController();
        entries.push(
          track(l, time, {
            maxWaitMs: Math.floor(random() * 2500),
            signal: controller.signal,
            client: `client-${Math.floor(random() * 4)}`,
            priority: random() < 0.3 ? 'batch' : 'interactive',
          }),
        );
        if (random() < 0.1) controller.abort();
      }
      await time.advance(10_000);
      await Promise.all(entries.map((entry) => entry.promise));
      const released = entries.flatMap((entry) => (entry.releasedAt === undefined ? [] : [entry.releasedAt]));
      expect(entries.some((entry) => entry.error instanceof OutboundRateLimitRefusal)).toBe(true);
      expect(entries.some((entry) => (entry.error as Error | undefined)?.name === 'AbortError')).toBe(true);
      expect(maxCallsInAnyWindow(released, budget.windowMs)).toBeLessThanOrEqual(budget.limit);
    });
  });
});
