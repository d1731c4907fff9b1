import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { SlotHandOff, type SlotConnections } from './slot-hand-off.js';

/** Connections as the hand-off sees them, on a clock the test moves. */
class FakeConnections implements SlotConnections {
  warm = true;
  idleNow = 0;
  vendorUnreachable = false;
  clock = 1000;
  lead = 100;
  ensured = 0;
  asks = 0;

  idle(): number {
    return this.idleNow;
  }
  ensure(): void {
    this.ensured++;
  }
  leadMs(): number {
    return this.lead;
  }
  asked(): void {
    this.asks++;
  }
  unreachable(): boolean {
    return this.vendorUnreachable;
  }
  now(): number {
    return this.clock;
  }
}

describe('SlotHandOff', () => {
  let connections: FakeConnections;
  let handOff: SlotHandOff;
  beforeEach(() => {
    connections = new FakeConnections();
    handOff = new SlotHandOff(connections);
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('lets a call claim an idle connection at its slot, one call per connection', () => {
    connections.idleNow = 1;
    const first = handOff.departure();
    const second = handOff.departure();
    expect(first.ready()).toBe(true);
    // Asked again, it keeps its claim rather than taking a second connection.
    expect(first.ready()).toBe(true);
    expect(handOff.claimed()).toBe(1);
    expect(second.ready()).toBe(false);
    expect(connections.asks).toBe(2);
  });

  it('trades the slot when no connection is idle, and has one opened', () => {
    const departure = handOff.departure();
    expect(departure.ready()).toBe(false);
    expect(connections.ensured).toBe(1);
    connections.idleNow = 1;
    expect(departure.ready()).toBe(true);
  });

  it('lets a call through when the vendor cannot be reached, so it fails at once', () => {
    connections.vendorUnreachable = true;
    expect(handOff.departure().ready()).toBe(true);
    expect(handOff.claimed()).toBe(0);
  });

  it('never holds a call back when connections are opened on demand', () => {
    connections.warm = false;
    expect(handOff.departure().ready()).toBe(true);
    expect(connections.asks).toBe(1);
  });

  it('gives the claim back when the call is done without sending, or to the agent with its request', async () => {
    connections.idleNow = 1;
    const given = handOff.departure();
    expect(given.ready()).toBe(true);
    given.done();
    expect(handOff.claimed()).toBe(0);

    const sent = handOff.departure();
    expect(sent.ready()).toBe(true);
    const current = await sent.send(() => Promise.resolve(handOff.current()));
    expect(current).toBe(sent);
    current?.handedOver();
    expect(handOff.claimed()).toBe(0);
    expect(handOff.current()).toBeUndefined();
  });

  it('counts the calls due by a time while they wait for their slots', () => {
    const early = handOff.departure();
    const late = handOff.departure();
    early.expect(1050);
    late.expect(1300);
    expect(handOff.dueBy(1100)).toBe(1);
    expect(handOff.dueBy(1300)).toBe(2);
    early.handedOver();
    expect(handOff.dueBy(1300)).toBe(1);
    late.done();
    expect(handOff.dueBy(1300)).toBe(0);
  });

  it('opens connections when a slot is granted, and again one lead before it', () => {
    jest.useFakeTimers();
    const ensuredAfter = (ms: number): number => {
      jest.advanceTimersByTime(ms);
      return connections.ensured;
    };
    const departure = handOff.departure();
    departure.expect(1500);
    expect([connections.ensured, ensuredAfter(399), ensuredAfter(1)]).toEqual([1, 1, 2]);

    // A slot within the lead needs no second look; a traded slot's look replaces the first's.
    departure.expect(1050);
    departure.expect(1600);
    departure.expect(1300);
    expect([connections.ensured, ensuredAfter(200), ensuredAfter(1000)]).toEqual([5, 6, 6]);

    // A call that is done needs none.
    departure.expect(1600);
    departure.done();
    expect(ensuredAfter(1000)).toBe(7);
  });
});
