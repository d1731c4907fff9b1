import { describe, expect, it } from '@jest/globals';
import { OverQuotaMemory } from './over-quota-memory.js';

function memoryAt(time: { now: number }): OverQuotaMemory {
  return new OverQuotaMemory(() => time.now);
}

describe('OverQuotaMemory', () => {
  it('refuses from when the question was sent until a slot frees, not a millisecond longer', () => {
    const time = { now: 1000 };
    const memory = memoryAt(time);
    // Asked at 1000, answered at 1030: the slot frees 300 ms after the question, at 1300.
    time.now = 1030;
    memory.remember('a', 1000, 5, 1000, 300);
    expect(memory.refusedFor('a', 1000, 5)).toBe(270);
    time.now = 1299;
    expect(memory.refusedFor('a', 1000, 5)).toBe(1);
    time.now = 1300;
    expect(memory.refusedFor('a', 1000, 5)).toBeUndefined();
  });

  it('knows nothing of other clients', () => {
    const time = { now: 0 };
    const memory = memoryAt(time);
    memory.remember('a', 1000, 5, 0, 500);
    expect(memory.refusedFor('b', 1000, 5)).toBeUndefined();
  });

  it('holds for the same window and any limit up to the one counted, not for a raised quota', () => {
    const time = { now: 0 };
    const memory = memoryAt(time);
    memory.remember('a', 1000, 5, 0, 500);
    expect(memory.refusedFor('a', 1000, 4)).toBe(500);
    expect(memory.refusedFor('a', 1000, 6)).toBeUndefined();
    expect(memory.refusedFor('a', 2000, 5)).toBeUndefined();
  });

  it('forgets an answer that arrived after the slot it names had already freed', () => {
    const time = { now: 0 };
    const memory = memoryAt(time);
    time.now = 80;
    memory.remember('a', 1000, 5, 0, 50);
    expect(memory.refusedFor('a', 1000, 5)).toBeUndefined();
  });

  it('a later refusal replaces an earlier one', () => {
    const time = { now: 0 };
    const memory = memoryAt(time);
    memory.remember('a', 1000, 5, 0, 100);
    time.now = 100;
    memory.remember('a', 1000, 5, 100, 400);
    expect(memory.refusedFor('a', 1000, 5)).toBe(400);
  });
});
