/**
 * The fleet on a Redis Cluster, as managed Redis services offer it: three gateway replicas reach a
 * real cluster (`redis-server --cluster-enabled yes`, formed with `redis-cli --cluster create`)
 * through REDIS_CLUSTER_NODES, the fake vendor in its own process. Teams send at once
 * (test/support/team-load.ts); what counts is what reached the fake's door.
 *
 * - With one replica per primary: fairness and the cap as on one Redis, then the primary serving
 *   the budget's slot killed mid-run (its replica promoted).
 * - With no replicas: the budget's primary killed mid-run (its slots unserved until it is back).
 */
import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisKeys } from '../../src/redis/redis-keys.js';
import { DEFAULT_KEY_PREFIX } from '../../src/redis/redis.settings.js';
import { criterion, unmet } from '../support/criteria.js';
import { FLEET_APP_ID, wentLocalAndBack } from '../support/fleet.js';
import { budgetUsed, fleetScenario, servedPromptly, STEADY_BESIDE_A_FLOOD, type Fleet } from '../support/fleet-scenario.js';
import type { ClusterNode } from '../support/redis-cluster.js';

/** A key of the vendor budget's scheduler: its slot is the budget's slot. */
const BUDGET_KEY = new RedisKeys(DEFAULT_KEY_PREFIX).outboundBudget(FLEET_APP_ID).slots;

/**
 * Kills the primary serving the budget's slot after the queues fill, lets `back` give the fleet its
 * slot again, and waits until every replica went on its own share and came back by itself.
 * Resolves with the rooms the vendor created from the loss until every replica was shared again.
 */
function losePrimary(fleet: Fleet, back: (primary: ClusterNode) => Promise<void>): () => Promise<number> {
  return async () => {
    const marks = fleet.gateways.map((g) => g.logMark());
    // The queues fill first (scenario timing, not synchronisation).
    await sleep(3_000);
    const primary = await fleet.cluster.primaryFor(BUDGET_KEY);
    const roomsBefore = (await fleet.fake.createdRooms()).length;
    await fleet.cluster.kill(primary);
    await back(primary);
    await Promise.all(fleet.gateways.map((g, i) => wentLocalAndBack(g, marks[i]!)));
    const roomsMeanwhile = (await fleet.fake.createdRooms()).length - roomsBefore;
    process.stdout.write(`rooms from the loss until shared again: ${roomsMeanwhile}\n`);
    // Saturated again for a couple of windows after the return.
    await sleep(2_500);
    return roomsMeanwhile;
  };
}

describe('three replicas on a Redis Cluster with one replica per primary', () => {
  const fleet = fleetScenario({ redis: { cluster: { primaries: 3, replicasPerPrimary: 1 } } });

  it('shares the budget as on one Redis: the steady teams served promptly, the cap held, the budget used', async () => {
    const run = await fleet.run('Redis Cluster, batch floods, web 4/s, ops 2/s', { teams: STEADY_BESIDE_A_FLOOD });
    expect(run.unexpectedAnswers).toEqual([]);
    expect(unmet([...run.capAtTheDoor, budgetUsed(run.figures), ...servedPromptly(run.figures, 'web', 'ops')])).toEqual([]);
  });

  it('keeps the cap while the budget slot fails over to a replica, loses no request, and returns to shared mode', async () => {
    const run = await fleet.run("Redis Cluster, the budget's primary killed mid-run, its replica promoted", {
      teams: STEADY_BESIDE_A_FLOOD,
      during: losePrimary(fleet, async (primary) => {
        await fleet.cluster.waitForFailover(primary);
      }),
    });
    expect(run.unexpectedAnswers).toEqual([]);
    expect(unmet([...run.capAtTheDoor, criterion('rooms created until every replica was shared again', run.during > 0, run.during)])).toEqual([]);
  });
});

describe('three replicas on a Redis Cluster without replicas', () => {
  const fleet = fleetScenario({ redis: { cluster: { primaries: 3, replicasPerPrimary: 0 } } });

  it("keeps the cap while the budget's primary is lost, creates rooms at the fallback share, and returns when it is back", async () => {
    const run = await fleet.run("Redis Cluster, the budget's primary killed mid-run, restarted 5 s later", {
      teams: STEADY_BESIDE_A_FLOOD,
      during: losePrimary(fleet, async (primary) => {
        // Longer than the shared queue takes to drain, so every replica sends on its own share.
        await sleep(5_000);
        await fleet.cluster.restart(primary);
        await fleet.cluster.waitUntilOk();
      }),
    });
    expect(run.unexpectedAnswers).toEqual([]);
    expect(unmet([...run.capAtTheDoor, criterion('rooms created while the slot was unserved', run.during > 0, run.during)])).toEqual([]);
  });
});
