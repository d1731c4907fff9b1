/**
 * A fleet larger than RATE_LIMIT_REPLICAS says: five gateway replicas with RATE_LIMIT_REPLICAS=3,
 * saturated, then Redis stopped for a few seconds and restarted. RATE_LIMIT_REPLICAS is what a
 * replica assumes only before its first contact with Redis; after it, the share each replica keeps
 * to while Redis is down follows the live fleet size seen in Redis, so five replicas on their own
 * shares still keep the fleet to 20 calls in any 1000 ms window at the vendor's door.
 */
import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { criterion, unmet } from '../support/criteria.js';
import { wentLocalAndBack } from '../support/fleet.js';
import { fleetScenario, LONGEST_RUN_MS, team } from '../support/fleet-scenario.js';
import { metricSum, scrapeMetrics } from '../support/prometheus-text.js';
import { closedLoop } from '../support/team-load.js';

const REPLICAS = 5;
const ASSUMED_REPLICAS = 3;
const ACTIVE_MEMBERS = 'zim_gateway_fleet_members';

const fleet = fleetScenario({ replicas: REPLICAS, env: { RATE_LIMIT_REPLICAS: String(ASSUMED_REPLICAS) } });

describe(`${REPLICAS} replicas, RATE_LIMIT_REPLICAS=${ASSUMED_REPLICAS}`, () => {
  it('keeps the cap through a Redis outage under saturation, every replica on a share of the fleet it saw in Redis', async () => {
    const marks = fleet.gateways.map((g) => g.logMark());
    const run = await fleet.run(`fleet of ${REPLICAS}, RATE_LIMIT_REPLICAS=${ASSUMED_REPLICAS}, 5 s Redis outage`, {
      teams: [team('alpha', closedLoop(30)), team('beta', closedLoop(30))],
      durationMs: LONGEST_RUN_MS,
      during: async () => {
        // The queues fill first; what each replica saw of the fleet is read just before Redis goes.
        await sleep(3_000);
        const membersSeen = await Promise.all(
          fleet.gateways.map(async (g) => metricSum(await scrapeMetrics(g.url), ACTIVE_MEMBERS, { state: 'active' })),
        );
        const stoppedAt = Date.now();
        await fleet.redis.stop();
        // Longer than the shared queue takes to drain (its 2 s of waits and a window), so every
        // replica sends on its own share for a while.
        await sleep(5_000);
        const restartedAt = Date.now();
        await fleet.redis.restart();
        await Promise.all(fleet.gateways.map((g, i) => wentLocalAndBack(g, marks[i]!)));
        // Saturated again for the two windows after the return.
        await sleep(2_500);
        return { membersSeen, stoppedAt, restartedAt };
      },
    });
    const { membersSeen, stoppedAt, restartedAt } = run.during;
    const at = (time: number): string => `${((time - run.load.startedAt) / 1000).toFixed(2)} s`;
    process.stdout.write(
      `Redis stopped at ${at(stoppedAt)}, restarted at ${at(restartedAt)}; ` +
        `${ACTIVE_MEMBERS}{state="active"} before the outage, per replica: ${JSON.stringify(membersSeen)}\n`,
    );

    expect(run.unexpectedAnswers).toEqual([]);
    expect(
      unmet([
        ...run.capAtTheDoor,
        criterion(
          `every replica saw ${REPLICAS} active members before the outage`,
          membersSeen.every((members) => members === REPLICAS),
          JSON.stringify(membersSeen),
        ),
      ]),
    ).toEqual([]);
  });
});
