/**
 * The fleet-wide cap, measured where the vendor counts: three real gateway processes sharing one
 * private Redis, the fake ZIM vendor in its own process, and sixty concurrent callers asking for
 * well over twice the budget; then the same through a Redis outage, which the cap holds through
 * as well (each replica on its own share while Redis is gone, handing over on the way in and out).
 * Windows are counted on the kernel's arrival times at the fake's port (see vendor-door.ts).
 */
import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { criterion, unmet } from '../support/criteria.js';
import { wentLocalAndBack } from '../support/fleet.js';
import { BUDGET, budgetUsed, CALL_DEADLINE_MS, fleetScenario, THREE_FLOODING_ALIKE } from '../support/fleet-scenario.js';
import { metricSum, scrapeMetrics } from '../support/prometheus-text.js';
import { ZimCode } from '../fake-zim/fake-zim-server.js';

const fleet = fleetScenario();

describe('three replicas, one Redis, twice the budget asked for', () => {
  it('never lets more than 20 calls into any 1000 ms window and turns at least 95% of the budget into rooms', async () => {
    const run = await fleet.run('three teams flooding alike', { teams: THREE_FLOODING_ALIKE });
    // Each 201 is a room the vendor really created, and each room one 201.
    const answeredCreated = run.load.answers.filter((a) => a.status === 201).length;
    const vendorCreated = run.calls.filter((c) => c.code === ZimCode.success).length;

    expect(run.unexpectedAnswers).toEqual([]);
    expect(
      unmet([
        criterion('at least twice the budget asked for', run.figures.offeredPerSecond >= 2 * BUDGET.limit, run.figures.offeredPerSecond.toFixed(1)),
        ...run.capAtTheDoor,
        budgetUsed(run.figures),
        criterion('one 201 per room the vendor created', answeredCreated === vendorCreated, `${answeredCreated} 201s, ${vendorCreated} rooms`),
      ]),
    ).toEqual([]);
  });

  it('keeps the cap and answers within the deadline while Redis is down, and returns to the shared limiter when it is back', async () => {
    const marks = fleet.gateways.map((g) => g.logMark());
    const run = await fleet.run('three teams flooding alike, Redis stopped from 3 s to 7 s', {
      teams: THREE_FLOODING_ALIKE,
      durationMs: 11_000,
      during: async () => {
        // Scenario timing, not synchronisation: Redis goes away in the middle of the run.
        await sleep(3_000);
        await fleet.redis.stop();
        const stoppedAt = Date.now();
        await sleep(4_000);
        await fleet.redis.restart();
        const backAt = Date.now();
        // Saturated on until the run's end, the hand-over back included.
        await sleep(4_000);
        return { stoppedAt, backAt };
      },
    });
    const { stoppedAt, backAt } = run.during;
    const slowest = Math.max(...run.load.answers.map((a) => a.latencyMs));
    // Rooms were still created while Redis was down (its first half second aside): each replica kept to its own share.
    const createdDuringOutage = run.calls.filter((c) => c.code === ZimCode.success && c.at > stoppedAt + 500 && c.at < backAt).length;
    const outagePerSecond = createdDuringOutage / ((backAt - stoppedAt - 500) / 1000);

    expect(run.unexpectedAnswers).toEqual([]);
    expect(
      unmet([
        ...run.capAtTheDoor,
        criterion('every request answered within the call deadline', slowest < CALL_DEADLINE_MS, `slowest ${slowest.toFixed(0)} ms`),
        criterion('rooms created while Redis was down', createdDuringOutage > 0, createdDuringOutage),
        criterion(`at most ${BUDGET.limit} rooms a second while Redis was down`, outagePerSecond <= BUDGET.limit, outagePerSecond.toFixed(1)),
      ]),
    ).toEqual([]);

    for (const [index, gateway] of fleet.gateways.entries()) {
      await wentLocalAndBack(gateway, marks[index]!);
      const metrics = await scrapeMetrics(gateway.url);
      expect(metricSum(metrics, 'zim_gateway_outbound_limiter_mode', { mode: 'shared' })).toBe(1);
      expect(metricSum(metrics, 'zim_gateway_outbound_limiter_mode', { mode: 'local' })).toBe(0);
    }
  });
});
