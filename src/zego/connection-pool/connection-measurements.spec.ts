import { beforeEach, describe, expect, it } from '@jest/globals';
import type { Logger } from '@nestjs/common';
import { ConnectionMeasurements } from './connection-measurements.js';

describe('ConnectionMeasurements', () => {
  let clock: number;
  let warnings: string[];
  let seen: string[];
  let measurements: ConnectionMeasurements;
  beforeEach(() => {
    clock = 10_000;
    warnings = [];
    seen = [];
    const logger = { debug: () => {}, warn: (message: string) => void warnings.push(message) } as unknown as Logger;
    measurements = new ConnectionMeasurements({
      safetyMarginMs: 30,
      hiddenSetupMs: 300,
      logger,
      now: () => clock,
      observer: {
        connected: (ms, when) => void seen.push(`connected ${ms} ${when}`),
        wired: (ms) => void seen.push(`wired ${ms}`),
        answered: (ms) => void seen.push(`answered ${ms}`),
      },
    });
  });

  it('knows no set-up or answer time before the first, then their p99', () => {
    expect([measurements.setupP99Ms, measurements.answerP99Ms]).toEqual([undefined, undefined]);
    for (let ms = 1; ms <= 100; ms++) measurements.connected(ms, 'ahead');
    measurements.answered(40, undefined);
    expect([measurements.setupP99Ms, measurements.answerP99Ms]).toEqual([99, 40]);
    expect(seen.slice(-2)).toEqual(['connected 100 ahead', 'answered 40']);
  });

  it('holds the vendor unreachable for a second after a failed attempt, until one succeeds', () => {
    expect(measurements.unreachable()).toBe(false);
    measurements.failed(new Error('connect ECONNREFUSED'));
    clock += 999;
    expect(measurements.unreachable()).toBe(true);
    clock += 1;
    expect(measurements.unreachable()).toBe(false);

    measurements.failed(new Error('connect ECONNREFUSED'));
    clock += 10;
    measurements.connected(5, 'on-path');
    expect(measurements.unreachable()).toBe(false);
    expect(measurements.msSinceFailure()).toBe(10);
  });

  it('counts the calls of the last second, and the time since a call left or asked', () => {
    measurements.callLeft();
    clock += 500;
    measurements.callLeft();
    clock += 400;
    measurements.asked();
    clock += 300;
    expect(measurements.demandAt(clock)).toEqual({ callsLastSecond: 1, msSinceDemand: 300 });
    expect(measurements.demandAt(clock + 800)).toEqual({ callsLastSecond: 0, msSinceDemand: 1100 });
  });

  it('warns once per kind when our side takes half the safety margin or more (p99)', () => {
    measurements.wired(14);
    measurements.connected(14, 'on-path');
    expect(warnings).toEqual([]);
    measurements.wired(15);
    measurements.wired(40);
    measurements.connected(80, 'ahead');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('from a slot to the wire');
    measurements.connected(20, 'on-path');
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toContain('to set up a vendor connection on their path');
    clock += 10 * 60_000;
    measurements.wired(1);
    expect(warnings).toHaveLength(3);
  });

  it('learns the hidden set-up from the first answer on a fresh connection, once kept-alive answers can be compared', () => {
    measurements.answered(400, 300);
    expect(measurements.hiddenSetupMs).toBe(300);
    for (let i = 0; i < 20; i++) measurements.answered(2, undefined);
    measurements.answered(400, 300);
    expect(measurements.hiddenSetupMs).toBe(600);
    measurements.answered(400, 300);
    expect(measurements.hiddenSetupMs).toBe(698);
  });
});
