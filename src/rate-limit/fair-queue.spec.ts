import { describe, expect, it } from '@jest/globals';
import { FairQueue, type FairRequest } from './fair-queue.js';
import type { Priority } from './rate-limit.settings.js';

const ask = (client: string, weight = 1, priority: Priority = 'interactive', front = false): FairRequest => ({ client, weight, priority, front });

/** Who the next `count` slots go to (fewer when the queue runs dry). */
function served(queue: FairQueue<string>, count = Number.POSITIVE_INFINITY): string[] {
  const order: string[] = [];
  while (order.length < count) {
    const ticket = queue.shift();
    if (!ticket) break;
    order.push(ticket.value);
  }
  return order;
}

describe('FairQueue', () => {
  it('alternates between two equal clients, each in its own order of arrival, whoever queued first', () => {
    const queue = new FairQueue<string>(0.1);
    for (const name of ['a1', 'a2', 'a3']) queue.push(ask('a'), name);
    for (const name of ['b1', 'b2', 'b3']) queue.push(ask('b'), name);
    expect(served(queue)).toEqual(['a1', 'b1', 'a2', 'b2', 'a3', 'b3']);
    expect(queue.size).toBe(0);
  });

  it('serves two flooding clients weighted 3 and 1 in that ratio', () => {
    const queue = new FairQueue<string>(0.1);
    for (let i = 0; i < 30; i++) queue.push(ask('heavy', 3), 'heavy');
    for (let i = 0; i < 30; i++) queue.push(ask('light', 1), 'light');
    const first = served(queue, 40);
    expect(first.filter((name) => name === 'heavy')).toHaveLength(30);
    expect(first.filter((name) => name === 'light')).toHaveLength(10);
  });

  it('charges a client nothing for tickets taken out before their turn', () => {
    const queue = new FairQueue<string>(0.1);
    const gaveUp = [queue.push(ask('a'), 'a1'), queue.push(ask('a'), 'a2')];
    queue.push(ask('a'), 'a3');
    for (const name of ['b1', 'b2', 'b3']) queue.push(ask('b'), name);
    for (const ticket of gaveUp) expect(queue.remove(ticket)).toBe(true);
    expect(queue.remove(gaveUp[0]!)).toBe(false);
    // a3 takes the place a1 had: the tie with b1 goes to the earlier arrival.
    expect(served(queue)).toEqual(['a3', 'b1', 'b2', 'b3']);
  });

  it('gives idle time no credit: a client back after others were served does not catch up on them', () => {
    const queue = new FairQueue<string>(0.1);
    for (let i = 1; i <= 4; i++) queue.push(ask('busy'), `busy${i}`);
    expect(served(queue, 3)).toEqual(['busy1', 'busy2', 'busy3']);
    queue.push(ask('late'), 'late1');
    queue.push(ask('late'), 'late2');
    for (let i = 5; i <= 6; i++) queue.push(ask('busy'), `busy${i}`);
    // late starts at the virtual time busy has reached, not at 0: one slot each, not late's two first.
    expect(served(queue)).toEqual(['late1', 'busy4', 'late2', 'busy5', 'busy6']);
  });

  it('puts a retried late slot first, at no charge to its client', () => {
    const queue = new FairQueue<string>(0.1);
    queue.push(ask('a'), 'a1');
    queue.push(ask('b'), 'b1');
    queue.push(ask('b'), 'b2');
    queue.push(ask('b', 1, 'interactive', true), 'b-retry');
    expect(served(queue)).toEqual(['b-retry', 'a1', 'b1', 'b2']);
  });

  it('gives batch minShare of the slots while interactive waits too, and the rest when interactive is done', () => {
    const queue = new FairQueue<string>(0.25);
    for (let i = 0; i < 12; i++) queue.push(ask('people'), 'interactive');
    for (let i = 0; i < 8; i++) queue.push(ask('nightly', 1, 'batch'), 'batch');
    const everyFourth = ['interactive', 'interactive', 'interactive', 'batch'];
    expect(served(queue)).toEqual([...everyFourth, ...everyFourth, ...everyFourth, ...everyFourth, ...Array<string>(4).fill('batch')]);
  });

  it('estimates the slots before a new ticket as the queue then serves them, while everyone keeps asking', () => {
    const queue = new FairQueue<string>(0.1);
    for (let i = 0; i < 12; i++) queue.push(ask('heavy', 3), 'heavy');
    queue.push(ask('light'), 'light');
    queue.push(ask('light'), 'light');
    const estimate = queue.slotsBefore(ask('light'));
    queue.push(ask('light'), 'mine');
    expect(served(queue).indexOf('mine')).toBe(estimate);
    expect(estimate).toBe(11);
  });

  it('estimates a batch ticket behind the interactive tickets waiting now, and never past its minimum share', () => {
    const queue = new FairQueue<string>(0.25);
    for (let i = 0; i < 6; i++) queue.push(ask('nightly', 1, 'batch'), 'batch');
    queue.push(ask('people'), 'interactive');
    queue.push(ask('people'), 'interactive');
    // Two interactive tickets, then the six batch ones: the eighth slot is the new ticket's, as served.
    const estimate = queue.slotsBefore(ask('nightly', 1, 'batch'));
    queue.push(ask('nightly', 1, 'batch'), 'mine');
    expect(estimate).toBe(8);
    expect(served(queue).indexOf('mine')).toBe(estimate);

    // Many interactive tickets: the minimum share bounds the wait (every fourth slot is batch's).
    for (let i = 0; i < 40; i++) queue.push(ask('people'), 'interactive');
    queue.push(ask('nightly', 1, 'batch'), 'batch');
    expect(queue.slotsBefore(ask('nightly', 1, 'batch'))).toBe((1 + 1) / 0.25 - 1);
  });

  it('lists the clients waiting, by level, and forgets a client whose line is empty', () => {
    const queue = new FairQueue<string>(0.1);
    const ticket = queue.push(ask('a'), 'a1');
    queue.push(ask('n', 1, 'batch'), 'n1');
    expect(queue.waitingClients()).toEqual([
      { client: 'a', priority: 'interactive' },
      { client: 'n', priority: 'batch' },
    ]);
    queue.remove(ticket);
    expect(queue.waitingClients()).toEqual([{ client: 'n', priority: 'batch' }]);
  });
});
