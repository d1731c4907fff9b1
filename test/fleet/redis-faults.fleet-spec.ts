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
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { criterion, unmet } from '../support/criteria.js';
import {
  FLEET_APP_ID,
  limiterModeChanges,
  startFakeZimProcess,
  startReplicas,
  untilEveryReplicaShared,
  waitForLimiterMode,
  warmUp,
  type FakeZimProcess,
} from '../support/fleet.js';
import { stopAllGateways, type GatewayProcess } from '../support/gateway-process.js';
import { startPrivateRedis, stopAllRedis, type TestRedis } from '../support/redis-server.js';
import { startTcpProxy, stopAllTcpProxies, type CutMode, type CutOptions, type TcpProxyProcess } from '../support/tcp-proxy-process.js';
import {
  closedLoop,
  formatTeamRunFigures,
  runTeamLoad,
  saturatedPeriod,
  teamRunFigures,
  unexpectedAnswers,
  type TeamLoadResult,
  type TeamRunFigures,
} from '../support/team-load.js';

const SECRET = 'SENTINEL-secret-redis-faults-81c4e0b7a35d9f26';
const CLIENTS = {
  alpha: 'sk-SENTINEL-faults-alpha-0d7b3e9a1c5f4628',
  beta: 'sk-SENTINEL-faults-beta-6e2a8c0f4b1d9735',
  gamma: 'sk-SENTINEL-faults-gamma-3f9d1b7e5a0c2864',
} as const;
const QPS = 20;
const WINDOW_MS = 1000;
const CALL_DEADLINE_MS = 10_000;
const REDIS_COMMAND_TIMEOUT_MS = 250;
/** An upper bound only: each run ends when its fault sequence is over. */
const LONGEST_RUN_MS = 60_000;

let redis: TestRedis;
let proxy: TcpProxyProcess;
let fake: FakeZimProcess;
let gateways: GatewayProcess[];
let runs = 0;

beforeAll(async () => {
  [redis, fake] = await Promise.all([startPrivateRedis(), startFakeZimProcess(FLEET_APP_ID, SECRET)]);
  proxy = await startTcpProxy({ target: `127.0.0.1:${redis.port}` });
  gateways = await startReplicas({
    replicas: 3,
    secret: SECRET,
    clients: CLIENTS,
    fakeUrl: fake.url,
    env: {
      REDIS_URL: redis.url,
      CLIENT_RATE_LIMIT: '1000',
      ZEGO_CALL_DEADLINE_MS: String(CALL_DEADLINE_MS),
      REDIS_COMMAND_TIMEOUT_MS: String(REDIS_COMMAND_TIMEOUT_MS),
    },
    envFor: (index): Record<string, string> => (index === 0 ? { REDIS_URL: proxy.url('redis') } : {}),
  });
  await Promise.all(gateways.map((g) => waitForLimiterMode(g, 'shared')));
  await warmUp(gateways, CLIENTS.alpha, 'warm');
}, 90_000);

beforeEach(async () => {
  // Each scenario starts from a fleet on the shared limiter, whatever the one before left.
  await untilEveryReplicaShared(gateways);
});

afterAll(async () => {
  await stopAllGateways();
  await fake?.process.stop();
  await stopAllTcpProxies();
  await stopAllRedis();
});

/** Sixty callers in three teams until the fault sequence is over; its figures, printed. */
async function saturatedDuring<T>(label: string, faults: () => Promise<T>): Promise<{ load: TeamLoadResult; figures: TeamRunFigures; faults: T }> {
  const before = (await fake.calls()).length;
  const sequence = faults();
  const load = await runTeamLoad({
    gateways,
    teams: Object.entries(CLIENTS).map(([name, key]) => ({ name, key, traffic: closedLoop(20) })),
    durationMs: LONGEST_RUN_MS,
    until: sequence,
    requestTimeoutMs: CALL_DEADLINE_MS + 5_000,
    runId: `f${++runs}`,
  });
  const outcome = await sequence;
  const calls = (await fake.calls()).slice(before);
  const figures = teamRunFigures(calls, load, { qpsLimit: QPS, windowMs: WINDOW_MS, ...saturatedPeriod(load) });
  process.stdout.write(`\nredis faults, ${label}:\n${formatTeamRunFigures(figures)}\n`);
  return { load, figures, faults: outcome };
}

/** Resolves once the replica logged `local` (from log line `since` on) and then `shared` again. */
async function wentLocalAndBack(gateway: GatewayProcess, since: number): Promise<void> {
  const local = await waitForLimiterMode(gateway, 'local', { since });
  await waitForLimiterMode(gateway, 'shared', { since: gateway.logLines().indexOf(local) + 1 });
}

function capAndAnswers(load: TeamLoadResult, figures: TeamRunFigures): string[] {
  const slowest = Math.max(...load.answers.map((a) => a.latencyMs));
  return unmet([
    criterion(`no window of ${WINDOW_MS} ms over ${QPS} calls, over the whole run`, figures.maxInAnyWindow <= QPS, figures.maxInAnyWindow),
    criterion('no vendor refusal (660300005)', figures.vendorRefusals === 0, figures.vendorRefusals),
    criterion(
      'every request answered within the call deadline plus one Redis command timeout',
      slowest < CALL_DEADLINE_MS + REDIS_COMMAND_TIMEOUT_MS,
      `slowest ${slowest.toFixed(0)} ms`,
    ),
  ]);
}

function sameModes(modes: readonly string[], expected: readonly string[]): boolean {
  return modes.length === expected.length && modes.every((mode, i) => mode === expected[i]);
}

describe('three replicas under saturation, Redis failing', () => {
  it('keeps the cap through three full Redis outages in one run, each entered and left by every replica', async () => {
    const OUTAGES = 3;
    const { load, figures, faults } = await saturatedDuring(`${OUTAGES} outages of 2.5 s`, async () => {
      const outages: Array<{ stoppedAt: number; restartedAt: number }> = [];
      // The queues fill before the first outage; between outages the fleet runs shared again.
      await sleep(2_000);
      for (let n = 0; n < OUTAGES; n++) {
        const marks = gateways.map((g) => g.logMark());
        await redis.stop();
        const stoppedAt = Date.now();
        await sleep(2_500);
        await redis.restart();
        outages.push({ stoppedAt, restartedAt: Date.now() });
        await Promise.all(gateways.map((g, i) => wentLocalAndBack(g, marks[i]!)));
        await sleep(1_500);
      }
      return outages;
    });

    const at = (time: number): string => `${((time - load.startedAt) / 1000).toFixed(2)} s`;
    process.stdout.write(`outages (stopped - restarted): ${faults.map((o) => `${at(o.stoppedAt)} - ${at(o.restartedAt)}`).join(', ')}\n`);
    expect(faults).toHaveLength(OUTAGES);
    expect(unexpectedAnswers(load.answers)).toEqual([]);
    expect(capAndAnswers(load, figures)).toEqual([]);
  });

  /** Replica 0 loses Redis for 5 s while the others keep it: long enough to send on its own share. */
  async function cutOff(mode: CutMode, options: CutOptions): Promise<void> {
    const marks = gateways.map((g) => g.logMark());
    const { load, figures, faults } = await saturatedDuring(`replica 0 cut off from Redis (${mode}, ${options.openConnections ?? 'destroy'})`, async () => {
      await sleep(3_000);
      await proxy.cut(mode, options);
      await sleep(5_000);
      const restored = await proxy.restore();
      await wentLocalAndBack(gateways[0]!, marks[0]!);
      // Saturated again for the two windows after the return (the shared log's hand-over).
      await sleep(2_500);
      return restored;
    });

    expect(faults.state).toBe('open');
    expect(unexpectedAnswers(load.answers)).toEqual([]);
    const [cutOffReplica, ...others] = gateways.map((g, i) => limiterModeChanges(g, marks[i]));
    expect([
      ...capAndAnswers(load, figures),
      ...unmet([
        criterion('replica 0 went to local and back to shared', sameModes(cutOffReplica!, ['local', 'shared']), JSON.stringify(cutOffReplica)),
        // The cut reached replica 0 only.
        criterion('replicas 1 and 2 stayed shared', others.every((modes) => modes.length === 0), JSON.stringify(others)),
      ]),
    ]).toEqual([]);
  }

  it('keeps the cap while one replica is cut off from Redis (connections reset and refused) and after it is back', async () => {
    await cutOff('refuse', {});
  });

  it('keeps the cap while one replica is cut off from Redis (connections frozen, new ones blackholed) and after it is back', async () => {
    await cutOff('blackhole', { openConnections: 'freeze' });
  });
});
