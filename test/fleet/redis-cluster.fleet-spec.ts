/**
 * The fleet on a Redis Cluster, as managed Redis services offer it: three gateway replicas reach a
 * real cluster (`redis-server --cluster-enabled yes`, formed with `redis-cli --cluster create`)
 * through REDIS_CLUSTER_NODES, the fake vendor in its own process. Teams send at once
 * (test/support/team-load.ts); what counts is what the fake recorded at its door.
 *
 * - With one replica per primary: fairness and the cap as on one Redis, then the primary serving
 *   the budget's slot killed mid-run (its replica promoted).
 * - With no replicas: the budget's primary killed mid-run (its slots unserved until it is back).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisKeys } from '../../src/redis/redis-keys.js';
import { DEFAULT_KEY_PREFIX } from '../../src/redis/redis.settings.js';
import { criterion, milliseconds, percent, unmet, type Criterion } from '../support/criteria.js';
import { FLEET_APP_ID, startFakeZimProcess, startReplicas, waitForLimiterMode, warmUp, type FakeZimProcess } from '../support/fleet.js';
import { stopAllGateways, type GatewayProcess } from '../support/gateway-process.js';
import { startRedisCluster, stopAllRedisClusters, type ClusterNode, type TestRedisCluster } from '../support/redis-cluster.js';
import {
  closedLoop,
  formatTeamRunFigures,
  openLoop,
  runTeamLoad,
  saturatedPeriod,
  teamRunFigures,
  unexpectedAnswers,
  type Team,
  type TeamRunFigures,
} from '../support/team-load.js';

const SECRET = 'SENTINEL-secret-cluster-5e2a9c71b04d3f86';
const CLIENTS = {
  batch: 'sk-SENTINEL-cluster-batch-8d3f1a6c2e09b745',
  web: 'sk-SENTINEL-cluster-web-0b7e4c9a1f62d358',
  ops: 'sk-SENTINEL-cluster-ops-6c1a8e3f5d02b947',
} as const;
type Client = keyof typeof CLIENTS;
const QPS = 20;
const WINDOW_MS = 1000;
const CALL_DEADLINE_MS = 10_000;
const RUN_MS = 12_000;
/** A key of the vendor budget's scheduler: its slot is the budget's slot. */
const BUDGET_KEY = new RedisKeys(DEFAULT_KEY_PREFIX).outboundBudget(FLEET_APP_ID).slots;

interface Fleet {
  cluster: TestRedisCluster;
  fake: FakeZimProcess;
  gateways: GatewayProcess[];
}

async function startFleet(replicasPerPrimary: 0 | 1): Promise<Fleet> {
  const [cluster, fake] = await Promise.all([
    startRedisCluster({ primaries: 3, replicasPerPrimary }),
    startFakeZimProcess(FLEET_APP_ID, SECRET),
  ]);
  const gateways = await startReplicas({
    replicas: 3,
    secret: SECRET,
    clients: CLIENTS,
    fakeUrl: fake.url,
    env: {
      REDIS_CLUSTER_NODES: cluster.seeds,
      CLIENT_RATE_LIMIT: '1000',
      ZEGO_CALL_DEADLINE_MS: String(CALL_DEADLINE_MS),
    },
  });
  await Promise.all(gateways.map((g) => waitForLimiterMode(g, 'shared')));
  await warmUp(gateways, CLIENTS.web, 'warm');
  return { cluster, fake, gateways };
}

const team = (name: Client, traffic: Team['traffic']): Team => ({ name, key: CLIENTS[name], traffic });
const THREE_TEAMS = [team('batch', closedLoop(40)), team('web', openLoop(4)), team('ops', openLoop(2))];

let runs = 0;
async function run(fleet: Fleet, label: string, during?: () => Promise<void>): Promise<{ figures: TeamRunFigures; answers: ReturnType<typeof unexpectedAnswers> }> {
  const before = (await fleet.fake.calls()).length;
  const scenario = during?.();
  const load = await runTeamLoad({
    gateways: fleet.gateways,
    teams: THREE_TEAMS,
    durationMs: RUN_MS,
    until: scenario,
    requestTimeoutMs: CALL_DEADLINE_MS + 5_000,
    runId: `c${++runs}`,
  });
  await scenario;
  const calls = (await fleet.fake.calls()).slice(before);
  const figures = teamRunFigures(calls, load, { qpsLimit: QPS, windowMs: WINDOW_MS, ...saturatedPeriod(load) });
  process.stdout.write(`\nRedis Cluster, ${label}:\n${formatTeamRunFigures(figures)}\n`);
  return { figures, answers: unexpectedAnswers(load.answers) };
}

function capHeld(figures: TeamRunFigures): Criterion[] {
  return [
    criterion(`no window of ${WINDOW_MS} ms over ${QPS} calls`, figures.maxInAnyWindow <= QPS, figures.maxInAnyWindow),
    criterion('no vendor refusal (660300005)', figures.vendorRefusals === 0, figures.vendorRefusals),
  ];
}

/** What a lost primary cost: the rooms the vendor created from its loss until every replica was shared again. */
interface Loss {
  roomsMeanwhile: number;
}

/**
 * Kills the primary serving the budget's slot after the queues fill, lets `back` give the fleet its
 * slot again, and waits until every replica went on its own share and came back by itself.
 */
function losePrimary(fleet: Fleet, loss: Loss, back: (primary: ClusterNode) => Promise<void>): () => Promise<void> {
  return async () => {
    const marks = fleet.gateways.map((g) => g.logMark());
    // The queues fill first (scenario timing, not synchronisation).
    await sleep(3_000);
    const primary = await fleet.cluster.primaryFor(BUDGET_KEY);
    const roomsBefore = (await fleet.fake.createdRooms()).length;
    await fleet.cluster.kill(primary);
    await back(primary);
    await Promise.all(
      fleet.gateways.map(async (g, i) => {
        const local = await waitForLimiterMode(g, 'local', { since: marks[i] });
        await waitForLimiterMode(g, 'shared', { since: g.logLines().indexOf(local) + 1 });
      }),
    );
    loss.roomsMeanwhile = (await fleet.fake.createdRooms()).length - roomsBefore;
    // Saturated again for a couple of windows after the return.
    await sleep(2_500);
  };
}

afterAll(async () => {
  await stopAllGateways();
  await stopAllRedisClusters();
});

describe('three replicas on a Redis Cluster with one replica per primary', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await startFleet(1);
  }, 120_000);

  afterAll(async () => {
    await stopAllGateways();
    await fleet?.fake.process.stop();
  });

  it('shares the budget as on one Redis: the steady teams served promptly, the cap held, the budget used', async () => {
    const { figures, answers } = await run(fleet, 'batch floods, web 4/s, ops 2/s');
    expect(answers).toEqual([]);
    expect(
      unmet([
        ...capHeld(figures),
        criterion('at least 95% of the budget turned into rooms', figures.budgetShare >= 0.95, percent(figures.budgetShare)),
        ...(['web', 'ops'] as const).flatMap((client) => [
          criterion(`${client}: at least 99% created`, figures.teams[client]!.createdShare >= 0.99, percent(figures.teams[client]!.createdShare)),
          criterion(`${client}: p99 at most 300 ms`, figures.teams[client]!.createdLatencyP99Ms <= 300, milliseconds(figures.teams[client]!.createdLatencyP99Ms)),
        ]),
      ]),
    ).toEqual([]);
  });

  it('keeps the cap while the budget slot fails over to a replica, loses no request, and returns to shared mode', async () => {
    const loss: Loss = { roomsMeanwhile: 0 };
    const { figures, answers } = await run(
      fleet,
      "the budget's primary killed mid-run, its replica promoted",
      losePrimary(fleet, loss, async (primary) => {
        await fleet.cluster.waitForFailover(primary);
      }),
    );
    process.stdout.write(`rooms from the loss until shared again: ${loss.roomsMeanwhile}\n`);
    expect(answers).toEqual([]);
    expect(
      unmet([...capHeld(figures), criterion('rooms created until every replica was shared again', loss.roomsMeanwhile > 0, loss.roomsMeanwhile)]),
    ).toEqual([]);
  });
});

describe('three replicas on a Redis Cluster without replicas', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await startFleet(0);
  }, 120_000);

  afterAll(async () => {
    await stopAllGateways();
    await fleet?.fake.process.stop();
  });

  it("keeps the cap while the budget's primary is lost, creates rooms at the fallback share, and returns when it is back", async () => {
    const loss: Loss = { roomsMeanwhile: 0 };
    const { figures, answers } = await run(
      fleet,
      "the budget's primary killed mid-run, restarted 5 s later",
      losePrimary(fleet, loss, async (primary) => {
        // Longer than the shared queue takes to drain, so every replica sends on its own share.
        await sleep(5_000);
        await fleet.cluster.restart(primary);
        await fleet.cluster.waitUntilOk();
      }),
    );
    process.stdout.write(`rooms from the loss until shared again: ${loss.roomsMeanwhile}\n`);
    expect(answers).toEqual([]);
    expect(
      unmet([...capHeld(figures), criterion('rooms created while the slot was unserved', loss.roomsMeanwhile > 0, loss.roomsMeanwhile)]),
    ).toEqual([]);
  });
});
