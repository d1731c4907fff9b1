/**
 * How vendor-door.ts reads a run over HTTPS, where the capture counts TLS records it cannot match
 * to the fake's calls: the kernel's times still decide the cap, the two records are compared by
 * number, and the fake's own bunching is told from the gateways'.
 */
import { describe, expect, it } from '@jest/globals';
import { ZimCode } from '../fake-zim/fake-zim-server.js';
import type { VendorCall } from './fleet.js';
import type { KernelArrival } from './loopback-capture.js';
import { capAtTheDoor, doorFigures, type DoorBudget } from './vendor-door.js';

const BUDGET: DoorBudget = { limit: 3, windowMs: 1000, marginMs: 30 };
const START = 1_800_000_000_000;

/** Records seen on the wire at these offsets (ms from the start), unreadable as TLS leaves them. */
const records = (offsets: number[]): KernelArrival[] => offsets.map((ms, i) => ({ at: START + ms, target: undefined, sourcePort: 40_000 + i }));

/** The fake's calls stamped at these offsets; `refused` of them (by index) answered with the frequency limit. */
const fakeCalls = (offsets: number[], refused: number[] = []): VendorCall[] =>
  offsets.map((ms, i) => ({ at: START + ms, atHr: ms, code: refused.includes(i) ? ZimCode.frequencyLimit : 0 }));

const unmetOf = (figures: ReturnType<typeof doorFigures>): string[] =>
  capAtTheDoor(figures, BUDGET)
    .filter((c) => !c.met)
    .map((c) => c.what);

describe('doorFigures over TLS (records counted, not matched)', () => {
  it('passes a run whose records and calls agree in number and keep the cap', () => {
    const figures = doorFigures({ calls: fakeCalls([0, 400, 800, 1100]), kernel: records([0, 399, 799, 1099]), stalls: [], startedAt: START }, BUDGET);
    expect(figures.kernelMax).toBe(3);
    expect([figures.unseenByKernel, figures.unknownToFake]).toEqual([0, 0]);
    expect(figures.fakeMaxLagMs).toBeUndefined();
    expect(unmetOf(figures)).toEqual([]);
  });

  it("names the fake's bunching when the kernel saw the calls spaced: its refusal is not the wire's", () => {
    const figures = doorFigures(
      { calls: fakeCalls([0, 700, 701, 702], [3]), kernel: records([0, 300, 600, 1001]), stalls: [{ endedAt: START + 702, ms: 400 }], startedAt: START },
      BUDGET,
    );
    expect(figures.fakeMax).toBe(4);
    expect(figures.kernelMax).toBe(3);
    expect(figures.refusalsOnTheWire).toBe(0);
    expect(figures.attribution).toContain("the fake's");
    expect(unmetOf(figures)).toEqual([]);
  });

  it("fails the gateways when the kernel saw more than the limit in a window, and counts the refusal as the wire's", () => {
    const figures = doorFigures({ calls: fakeCalls([0, 100, 200, 300], [3]), kernel: records([0, 100, 200, 300]), stalls: [], startedAt: START }, BUDGET);
    expect(figures.kernelMax).toBe(4);
    expect(figures.refusalsOnTheWire).toBe(1);
    expect(figures.attribution).toContain("the gateway's");
    expect(unmetOf(figures)).toHaveLength(2);
  });

  it('fails a capture whose count differs from the fake’s record, either way', () => {
    const missed = doorFigures({ calls: fakeCalls([0, 400, 800]), kernel: records([0, 400]), stalls: [], startedAt: START }, BUDGET);
    const extra = doorFigures({ calls: fakeCalls([0, 400]), kernel: records([0, 400, 800]), stalls: [], startedAt: START }, BUDGET);
    expect([missed.unseenByKernel, missed.unknownToFake]).toEqual([1, 0]);
    expect([extra.unseenByKernel, extra.unknownToFake]).toEqual([0, 1]);
    expect(unmetOf(missed)).toHaveLength(1);
    expect(unmetOf(extra)).toHaveLength(1);
  });
});
