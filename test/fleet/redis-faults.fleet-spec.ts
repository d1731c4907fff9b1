/**
 * The cap at the vendor's door (at most 20 calls in any 1000 ms window) through Redis faults, in
 * saturated runs: three gateway replicas, one private Redis, the fake vendor in its own process,
 * sixty callers asking for far more than the budget.
 *
 * Replica 0 reaches Redis through a TCP proxy (test/support/tcp-proxy-process.ts), the others
 * directly, so one replica can lose Redis while the others keep it. While the proxy forwards,
 * replica 0 is like the others; when Redis itself stops, the proxy resets its connections (the
 * target refuses), as a stopped Redis does to the direct ones.
 *
 * Fault timing (how long Redis is gone, when it goes) is part of each scenario; everything that
 * follows a fault is awaited on the replicas' own log lines (`Outbound limiter mode: ...`).
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { criterion, unmet, type Criterion } from '../support/criteria.js';
import { limiterModeChanges, untilEveryReplicaShared, wentLocalAndBack } from '../support/fleet.js';
import { CALL_DEADLINE_MS, fleetScenario, LONGEST_RUN_MS, THREE_FLOODING_ALIKE, type FleetRun } from '../support/fleet-scenario.js';
import type { CutMode, CutOptions } from '../support/tcp-proxy-process.js';

const REDIS_COMMAND_TIMEOUT_MS = 250;

const fleet = fleetScenario({ redisProxyFor: [0], env: { REDIS_COMMAND_TIMEOUT_MS: String(REDIS_COMMAND_TIMEOUT_MS) } });

beforeEach(async () => {
  // Each scenario starts from a fleet on the shared limiter, whatever the one before left.
  await untilEveryReplicaShared(fleet.gateways);
});

function capAndAnswers(run: FleetRun<unknown>): Criterion[] {
  const slowest = Math.max(...run.load.answers.map((a) => a.latencyMs));
  return [
    ...run.capAtTheDoor,
    criterion(
      'every request answered within the call deadline plus one Redis command timeout',
      slowest < CALL_DEADLINE_MS + REDIS_COMMAND_TIMEOUT_MS,
      `slowest ${slowest.toFixed(0)} ms`,
    ),
  ];
}

function sameModes(modes: readonly string[], expected: readonly string[]): boolean {
  return modes.length === expected.length && modes.every((mode, i) => mode === expected[i]);
}

describe('three replicas under saturation, Redis failing', () => {
  it('keeps the cap through three full Redis outages in one run, each entered and left by every replica', async () => {
    const OUTAGES = 3;
    const run = await fleet.run(`redis faults, ${OUTAGES} outages of 2.5 s`, {
      teams: THREE_FLOODING_ALIKE,
      durationMs: LONGEST_RUN_MS,
      during: async () => {
        const outages: Array<{ stoppedAt: number; restartedAt: number }> = [];
        // The queues fill before the first outage; between outages the fleet runs shared again.
        await sleep(2_000);
        for (let n = 0; n < OUTAGES; n++) {
          const marks = fleet.gateways.map((g) => g.logMark());
          await fleet.redis.stop();
          const stoppedAt = Date.now();
          await sleep(2_500);
          await fleet.redis.restart();
          outages.push({ stoppedAt, restartedAt: Date.now() });
          await Promise.all(fleet.gateways.map((g, i) => wentLocalAndBack(g, marks[i]!)));
          await sleep(1_500);
        }
        return outages;
      },
    });

    const at = (time: number): string => `${((time - run.load.startedAt) / 1000).toFixed(2)} s`;
    process.stdout.write(`outages (stopped - restarted): ${run.during.map((o) => `${at(o.stoppedAt)} - ${at(o.restartedAt)}`).join(', ')}\n`);
    expect(run.during).toHaveLength(OUTAGES);
    expect(run.unexpectedAnswers).toEqual([]);
    expect(unmet(capAndAnswers(run))).toEqual([]);
  });

  /** Replica 0 loses Redis for 5 s while the others keep it: long enough to send on its own share. */
  async function cutOff(mode: CutMode, options: CutOptions): Promise<void> {
    const marks = fleet.gateways.map((g) => g.logMark());
    const run = await fleet.run(`redis faults, replica 0 cut off from Redis (${mode}, ${options.openConnections ?? 'destroy'})`, {
      teams: THREE_FLOODING_ALIKE,
      durationMs: LONGEST_RUN_MS,
      during: async () => {
        await sleep(3_000);
        await fleet.redisProxy.cut(mode, options);
        await sleep(5_000);
        const restored = await fleet.redisProxy.restore();
        await wentLocalAndBack(fleet.gateways[0]!, marks[0]!);
        // Saturated again for the two windows after the return (the shared log's hand-over).
        await sleep(2_500);
        return restored;
      },
    });

    expect(run.during.state).toBe('open');
    expect(run.unexpectedAnswers).toEqual([]);
    const [cutOffReplica, ...others] = fleet.gateways.map((g, i) => limiterModeChanges(g, marks[i]));
    expect(
      unmet([
        ...capAndAnswers(run),
        criterion('replica 0 went to local and back to shared', sameModes(cutOffReplica!, ['local', 'shared']), JSON.stringify(cutOffReplica)),
        // The cut reached replica 0 only.
        criterion('replicas 1 and 2 stayed shared', others.every((modes) => modes.length === 0), JSON.stringify(others)),
      ]),
    ).toEqual([]);
  }

  it('keeps the cap while one replica is cut off from Redis (connections reset and refused) and after it is back', async () => {
    await cutOff('refuse', {});
  });

  it('keeps the cap while one replica is cut off from Redis (connections frozen, new ones blackholed) and after it is back', async () => {
    await cutOff('blackhole', { openConnections: 'freeze' });
  });
});
