import { describe, expect, it } from '@jest/globals';
import {
  assumedHiddenSetupMs,
  connectionLimit,
  connectionsToOpen,
  idleWanted,
  learnedHiddenSetupMs,
  leadMs,
  renewals,
  settleMs,
  type Demand,
  type Held,
} from './sizing-policy.js';

describe('sizing policy', () => {
  it.each([
    { protocol: 'http:', expected: 300 },
    { protocol: 'https:', expected: 0 },
  ])('assumes a hidden set-up of $expected ms over $protocol before any first exchange', ({ protocol, expected }) => {
    expect(assumedHiddenSetupMs(protocol)).toBe(expected);
  });

  // lead = hidden set-up + max(20, 2 × set-up p99), a set-up of 250 ms assumed before the first.
  it.each([
    { hidden: 0, setup: undefined, expected: 500 },
    { hidden: 300, setup: undefined, expected: 800 },
    { hidden: 0, setup: 80, expected: 160 },
    { hidden: 300, setup: 80, expected: 460 },
    { hidden: 300, setup: 0.4, expected: 320 },
    { hidden: 0, setup: 10, expected: 20 },
    { hidden: 0, setup: 10.5, expected: 21 },
  ])('leads by $expected ms with a hidden set-up of $hidden ms and set-ups of $setup ms', ({ hidden, setup, expected }) => {
    expect(leadMs(hidden, setup)).toBe(expected);
  });

  // limit = ceil(budget × (answer p99 + lead) / 1000 × 1.5) + 2, within 4..64; answers of 1 s assumed before the first.
  it.each([
    { budget: 20, answer: undefined, lead: 500, expected: 47 },
    { budget: 20, answer: 200, lead: 320, expected: 18 },
    { budget: 20, answer: 100, lead: 0, expected: 5 },
    { budget: 20, answer: 1, lead: 20, expected: 4 },
    { budget: 1, answer: 1000, lead: 500, expected: 5 },
    { budget: 20, answer: 2000, lead: 500, expected: 64 },
    { budget: 100, answer: 1000, lead: 500, expected: 64 },
  ])('keeps at most $expected connections at $budget calls/s, answers of $answer ms and a lead of $lead ms', ({ budget, answer, lead, expected }) => {
    expect(connectionLimit({ budgetPerSecond: budget, answerP99Ms: answer, leadMs: lead })).toBe(expected);
  });

  it.each([
    { hidden: 300, keepAliveIdle: 4000, expected: 300 },
    { hidden: 600, keepAliveIdle: 1000, expected: 500 },
    { hidden: 0, keepAliveIdle: 4000, expected: 0 },
  ])('lets a spare settle $expected ms with a hidden set-up of $hidden ms, idle connections closed after $keepAliveIdle ms', ({ hidden, keepAliveIdle, expected }) => {
    expect(settleMs(hidden, keepAliveIdle)).toBe(expected);
  });

  const calling: Omit<Demand, 'dueWithinLead' | 'callsLastSecond'> = { leadMs: 330, msSinceDemand: 100, keepAliveIdleMs: 4000 };
  it.each<{ why: string; demand: Demand; expected: number }>([
    { why: 'one warm between calls', demand: { ...calling, dueWithinLead: 0, callsLastSecond: 0, msSinceDemand: Infinity }, expected: 1 },
    { why: 'one warm once the last call is a keep-alive idle time ago', demand: { ...calling, dueWithinLead: 0, callsLastSecond: 3, msSinceDemand: 800, keepAliveIdleMs: 800 }, expected: 1 },
    { why: 'the recent rate, and a spare, within a keep-alive idle time', demand: { ...calling, dueWithinLead: 0, callsLastSecond: 3, msSinceDemand: 799, keepAliveIdleMs: 800 }, expected: 2 },
    { why: 'a spare just after a call', demand: { ...calling, dueWithinLead: 0, callsLastSecond: 0 }, expected: 1 },
    { why: 'the calls due within the lead, and a spare', demand: { ...calling, dueWithinLead: 3, callsLastSecond: 0 }, expected: 4 },
    { why: 'calls due count after a quiet spell', demand: { ...calling, dueWithinLead: 2, callsLastSecond: 0, msSinceDemand: Infinity }, expected: 3 },
    { why: 'the calls of one lead at the recent rate (20/s × 330 ms), and a spare', demand: { ...calling, dueWithinLead: 0, callsLastSecond: 20 }, expected: 8 },
    { why: 'the rate when more than the calls due', demand: { ...calling, dueWithinLead: 3, callsLastSecond: 20 }, expected: 8 },
    { why: 'the calls due when more than the rate', demand: { ...calling, dueWithinLead: 9, callsLastSecond: 20 }, expected: 10 },
    { why: 'a part call rounds up', demand: { ...calling, dueWithinLead: 0, callsLastSecond: 1, leadMs: 20 }, expected: 2 },
  ])('wants $expected idle: $why', ({ demand, expected }) => {
    expect(idleWanted(demand)).toBe(expected);
  });

  const held: Held = { idle: 0, claimed: 0, expiring: 0, busy: 0, pending: 0, limit: 18 };
  it.each<{ why: string; wanted: number; held: Held; expected: number }>([
    { why: 'nothing held', wanted: 4, held, expected: 4 },
    { why: 'idle ones count', wanted: 4, held: { ...held, idle: 3 }, expected: 1 },
    { why: 'claimed idle ones do not', wanted: 4, held: { ...held, idle: 3, claimed: 2 }, expected: 3 },
    { why: 'pending ones count', wanted: 4, held: { ...held, idle: 1, pending: 2 }, expected: 1 },
    { why: 'busy ones do not', wanted: 4, held: { ...held, busy: 10 }, expected: 4 },
    { why: 'no more than the limit', wanted: 8, held: { ...held, idle: 1, busy: 14, pending: 1 }, expected: 2 },
    { why: 'none at the limit', wanted: 8, held: { ...held, busy: 18 }, expected: 0 },
    { why: 'none above the limit (it shrank)', wanted: 8, held: { ...held, busy: 20 }, expected: 0 },
    { why: 'none when more are idle than wanted', wanted: 1, held: { ...held, idle: 5 }, expected: 0 },
    { why: 'the one kept warm about to close is replaced', wanted: 1, held: { ...held, idle: 1, expiring: 1 }, expected: 1 },
    { why: 'a replacement already settling counts', wanted: 1, held: { ...held, idle: 1, expiring: 1, pending: 1 }, expected: 0 },
    { why: 'none while one would be left warm', wanted: 3, held: { ...held, idle: 3, expiring: 2 }, expected: 0 },
    { why: 'one when all idle ones are about to close', wanted: 3, held: { ...held, idle: 3, expiring: 3 }, expected: 1 },
    { why: 'a claim takes an expiring one (the longest idle): the other lasts', wanted: 1, held: { ...held, idle: 2, expiring: 1, claimed: 1 }, expected: 0 },
    { why: 'the calls due as before, expiring ones and all', wanted: 4, held: { ...held, idle: 2, expiring: 2 }, expected: 2 },
  ])('opens $expected: $why', ({ wanted, held, expected }) => {
    expect(connectionsToOpen(wanted, held)).toBe(expected);
  });

  // Replaced from max(usable, closesAt − 2 × lead); the lead here 320 ms.
  it.each([
    { why: 'none idle', deadlines: [], expected: { expiring: 0, nextAt: undefined } },
    { why: 'one closing in 3 s: looked at again 640 ms before', deadlines: [{ closesAt: 13_000, usableFrom: 9_000 }], expected: { expiring: 0, nextAt: 12_360 } },
    { why: 'one closing within twice the lead', deadlines: [{ closesAt: 10_640, usableFrom: 9_000 }], expected: { expiring: 1, nextAt: undefined } },
    { why: 'a spare still settling, closing soon: once it is usable', deadlines: [{ closesAt: 10_600, usableFrom: 10_300 }], expected: { expiring: 0, nextAt: 10_300 } },
    { why: 'a spare just usable, closing soon', deadlines: [{ closesAt: 10_300, usableFrom: 10_000 }], expected: { expiring: 1, nextAt: undefined } },
    {
      why: 'several: the expiring counted, the soonest of the rest next',
      deadlines: [
        { closesAt: 10_100, usableFrom: 6_100 },
        { closesAt: 14_000, usableFrom: 10_000 },
        { closesAt: 11_000, usableFrom: 7_000 },
      ],
      expected: { expiring: 1, nextAt: 10_360 },
    },
  ])('renews at 10 s: $why', ({ deadlines, expected }) => {
    expect(renewals(deadlines, 10_000, 320)).toEqual(expected);
  });

  // Kept-alive answers: 20 or more, p50 2 ms, p99 5 ms; a first answer within p99 + 5 ms is the vendor's own time.
  const reused = { count: 25, p50Ms: 2, p99Ms: 5 };
  it.each([
    { why: 'too few kept-alive answers to compare', current: 300, first: { ageMs: 300, answerMs: 400 }, reused: { ...reused, count: 19 }, expected: 300 },
    { why: 'a connection older than twice the hidden set-up', current: 300, first: { ageMs: 601, answerMs: 400 }, reused, expected: 300 },
    { why: 'an answer as fast as kept-alive ones', current: 300, first: { ageMs: 300, answerMs: 10 }, reused, expected: 300 },
    { why: 'held by about the difference', current: 300, first: { ageMs: 300, answerMs: 200 }, reused, expected: 498 },
    { why: 'at most doubled per answer', current: 300, first: { ageMs: 300, answerMs: 400 }, reused, expected: 600 },
    { why: 'never lowered', current: 300, first: { ageMs: 100, answerMs: 50 }, reused, expected: 300 },
    { why: 'from nothing (https) to twice the scheduling slack', current: 0, first: { ageMs: 0, answerMs: 100 }, reused, expected: 40 },
    { why: 'not past 5 s', current: 4000, first: { ageMs: 3000, answerMs: 4000 }, reused, expected: 5000 },
  ])('learns a hidden set-up of $expected ms from $current ms: $why', ({ current, first, reused, expected }) => {
    expect(learnedHiddenSetupMs(current, first, reused)).toBe(expected);
  });
});
