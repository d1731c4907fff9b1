import { describe, expect, it } from '@jest/globals';
import { RefusalLogSampler, type RefusalSummary } from './refusal-log-sampler.js';

/** Timers the test fires by hand. */
class ManualTimers {
  readonly armed = new Map<number, { callback: () => void; ms: number }>();
  private next = 0;
  setTimeout = (callback: () => void, ms: number): unknown => {
    this.armed.set(++this.next, { callback, ms });
    return this.next;
  };
  clearTimeout = (handle: unknown): void => {
    this.armed.delete(handle as number);
  };
  fireAll(): void {
    const due = [...this.armed.values()];
    this.armed.clear();
    for (const { callback } of due) callback();
  }
}

function sampler() {
  const timers = new ManualTimers();
  const summaries: RefusalSummary[] = [];
  return { timers, summaries, sampler: new RefusalLogSampler((s) => summaries.push(s), 1000, timers) };
}

const quota = { client: 'svc-a', status: 429, reason: 'client quota' };

describe('RefusalLogSampler', () => {
  it('logs the first refusal of a kind in full and counts the rest into one summary with the true count', () => {
    const { sampler: s, timers, summaries } = sampler();
    const full = Array.from({ length: 2000 }, () => s.takeLine(quota));
    expect(full.filter(Boolean)).toHaveLength(1);
    expect(full[0]).toBe(true);
    expect(timers.armed.size).toBe(1);
    expect([...timers.armed.values()][0]!.ms).toBe(1000);
    timers.fireAll();
    expect(summaries).toEqual([{ ...quota, count: 2000, intervalMs: 1000 }]);
  });

  it('keeps kinds apart: client, status and reason', () => {
    const { sampler: s, timers, summaries } = sampler();
    const kinds = [
      quota,
      { ...quota, client: 'svc-b' },
      { ...quota, status: 400, reason: 'invalid request body' },
      { status: 401, reason: 'Unknown API key' },
    ];
    for (const kind of kinds) expect(s.takeLine(kind)).toBe(true);
    for (const kind of kinds) expect(s.takeLine(kind)).toBe(false);
    expect(timers.armed.size).toBe(1);
    timers.fireAll();
    expect(summaries.map((x) => x.count)).toEqual([2, 2, 2, 2]);
  });

  it('writes no summary for a kind seen once, and opens a fresh interval afterwards', () => {
    const { sampler: s, timers, summaries } = sampler();
    expect(s.takeLine(quota)).toBe(true);
    timers.fireAll();
    expect(summaries).toEqual([]);
    expect(timers.armed.size).toBe(0);
    expect(s.takeLine(quota)).toBe(true);
    expect(timers.armed.size).toBe(1);
  });

  it('flush reports what is counted so far and disarms the timer (at shutdown)', () => {
    const { sampler: s, timers, summaries } = sampler();
    s.takeLine(quota);
    s.takeLine(quota);
    s.flush();
    expect(summaries).toEqual([{ ...quota, count: 2, intervalMs: 1000 }]);
    expect(timers.armed.size).toBe(0);
  });
});
