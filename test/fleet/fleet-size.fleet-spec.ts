/**
 * A fleet larger than RATE_LIMIT_REPLICAS says: five gateway replicas with RATE_LIMIT_REPLICAS=3,
 * saturated, then Redis stopped for a few seconds and restarted. RATE_LIMIT_REPLICAS is what a
 * replica assumes only before its first contact with Redis; after it, the share each replica keeps
 * to while Redis is down follows the live fleet size seen in Redis, so five replicas on their own
 * shares still keep the fleet to 20 calls in any 1000 ms window at the vendor's door.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { criterion, unmet } from '../support/criteria.js';
import {
  FLEET_APP_ID,
  startFakeZimProcess,
  startReplicas,
  waitForLimiterMode,
  warmUp,
  type FakeZimProcess,
} from '../support/fleet.js';
import { stopAllGateways, type GatewayProcess } from '../support/gateway-process.js';
import { metricSum, scrapeMetrics } from '../support/prometheus-text.js';
import { startPrivateRedis, stopAllRedis, type TestRedis } from '../support/redis-server.js';
import {
  closedLoop,
  formatTeamRunFigures,
  runTeamLoad,
  saturatedPeriod,
  teamRunFigures,
  unexpectedAnswers,
} from '../support/team-load.js';

const SECRET = 'SENTINEL-secret-fleet-size-5d0a8e3c1f7b4926';
const CLIENTS = {
  alpha: 'sk-SENTINEL-size-alpha-4c9e1a7d3b0f5826',
  beta: 'sk-SENTINEL-size-beta-8a3f0d6b2e9c1475',
} as const;
const REPLICAS = 5;
const ASSUMED_REPLICAS = 3;
const QPS = 20;
const WINDOW_MS = 1000;
const CALL_DEADLINE_MS = 10_000;
const ACTIVE_MEMBERS = 'zim_gateway_fleet_members';

let redis: TestRedis;
let fake: FakeZimProcess;
let gateways: GatewayProcess[];

beforeAll(async () => {
  [redis, fake] = await Promise.all([startPrivateRedis(), startFakeZimProcess(FLEET_APP_ID, SECRET)]);
  gateways = await startReplicas({
    replicas: REPLICAS,
    secret: SECRET,
    clients: CLIENTS,
    fakeUrl: fake.url,
    env: {
      REDIS_URL: redis.url,
      RATE_LIMIT_REPLICAS: String(ASSUMED_REPLICAS),
      CLIENT_RATE_LIMIT: '1000',
      ZEGO_CALL_DEADLINE_MS: String(CALL_DEADLINE_MS),
    },
  });
  await Promise.all(gateways.map((g) => waitForLimiterMode(g, 'shared')));
  await warmUp(gateways, CLIENTS.alpha, 'warm');
}, 120_000);

afterAll(async () => {
  await stopAllGateways();
  await fake?.process.stop();
  await stopAllRedis();
});

describe(`${REPLICAS} replicas, RATE_LIMIT_REPLICAS=${ASSUMED_REPLICAS}`, () => {
  it('keeps the cap through a Redis outage under saturation, every replica on a share of the fleet it saw in Redis', async () => {
    const before = (await fake.calls()).length;
    const marks = gateways.map((g) => g.logMark());
    let membersSeenBeforeOutage: number[] = [];
    const outageAt = { stopped: Number.NaN, restarted: Number.NaN };
    const outage = (async () => {
      // The queues fill first; what each replica saw of the fleet is read just before Redis goes.
      await sleep(3_000);
      membersSeenBeforeOutage = await Promise.all(
        gateways.map(async (g) => metricSum(await scrapeMetrics(g.url), ACTIVE_MEMBERS, { state: 'active' })),
      );
      outageAt.stopped = Date.now();
      await redis.stop();
      // Longer than the shared queue takes to drain (its 2 s of waits and a window), so every
      // replica sends on its own share for a while.
      await sleep(5_000);
      outageAt.restarted = Date.now();
      await redis.restart();
      await Promise.all(
        gateways.map(async (g, i) => {
          const local = await waitForLimiterMode(g, 'local', { since: marks[i] });
          await waitForLimiterMode(g, 'shared', { since: g.logLines().indexOf(local) + 1 });
        }),
      );
      // Saturated again for the two windows after the return.
      await sleep(2_500);
    })();
    const load = await runTeamLoad({
      gateways,
      teams: Object.entries(CLIENTS).map(([name, key]) => ({ name, key, traffic: closedLoop(30) })),
      durationMs: 60_000,
      until: outage,
      requestTimeoutMs: CALL_DEADLINE_MS + 5_000,
      runId: 'size',
    });
    await outage;
    const calls = (await fake.calls()).slice(before);
    const figures = teamRunFigures(calls, load, { qpsLimit: QPS, windowMs: WINDOW_MS, ...saturatedPeriod(load) });
    process.stdout.write(
      `\nfleet of ${REPLICAS}, RATE_LIMIT_REPLICAS=${ASSUMED_REPLICAS}, 5 s Redis outage:\n${formatTeamRunFigures(figures)}\n` +
        `Redis stopped at ${((outageAt.stopped - load.startedAt) / 1000).toFixed(2)} s, restarted at ` +
        `${((outageAt.restarted - load.startedAt) / 1000).toFixed(2)} s; ` +
        `${ACTIVE_MEMBERS}{state="active"} before the outage, per replica: ${JSON.stringify(membersSeenBeforeOutage)}\n`,
    );

    expect(unexpectedAnswers(load.answers)).toEqual([]);
    expect(
      unmet([
        criterion(`no window of ${WINDOW_MS} ms over ${QPS} calls, over the whole run`, figures.maxInAnyWindow <= QPS, figures.maxInAnyWindow),
        criterion(
          `every replica saw ${REPLICAS} active members before the outage`,
          membersSeenBeforeOutage.every((members) => members === REPLICAS),
          JSON.stringify(membersSeenBeforeOutage),
        ),
      ]),
    ).toEqual([]);
  });
});
