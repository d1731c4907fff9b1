/**
 * The cap across a real network: three gateway processes and one Redis, and between the gateways
 * and the fake vendor a TCP proxy in its own process that behaves like a wide-area path (a set-up
 * delay per new connection before its first byte moves, a one-way delay and jitter), with the fake
 * answering in a spread of times. What counts is what the fake recorded at its door.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { criterion, percent, unmet, type Criterion } from '../support/criteria.js';
import { stopAllGateways, type GatewayProcess } from '../support/gateway-process.js';
import {
  FLEET_APP_ID,
  fleetFigures,
  runLoad,
  startFakeZimProcess,
  startReplicas,
  waitForLimiterMode,
  warmUp,
  type Answer,
  type FakeZimProcess,
  type FleetFigures,
  type LoadResult,
} from '../support/fleet.js';
import { metricSum, scrapeMetrics } from '../support/prometheus-text.js';
import { startPrivateRedis, stopAllRedis, type TestRedis } from '../support/redis-server.js';
import { startTcpProxy, stopAllTcpProxies, type Shaping, type TcpProxyProcess } from '../support/tcp-proxy-process.js';
import { createTestCertificate, type TestCertificate } from '../support/test-certificate.js';

const SECRET = 'SENTINEL-secret-wan-7d2e91c04b6a35f8';
const CLIENTS: Record<string, string> = {
  'team-a': 'sk-SENTINEL-wan-a-2c8e05b9f1d4a763',
  'team-b': 'sk-SENTINEL-wan-b-6f1a3d9c07e4b825',
  'team-c': 'sk-SENTINEL-wan-c-a94c2e7d15b03f86',
};
const KEYS = Object.values(CLIENTS);
const QPS = 20;
const WINDOW_MS = 1000;
const CALL_DEADLINE_MS = 10_000;
const LOAD_MS = 12_000;

interface Path {
  fake: FakeZimProcess;
  proxy: TcpProxyProcess;
  gateways: GatewayProcess[];
}

/** The fake, the proxy in front of it, and three replicas that reach the fake only through the proxy. */
async function startPath(redis: TestRedis, options: { tls?: TestCertificate } = {}): Promise<Path> {
  const fake = await startFakeZimProcess(FLEET_APP_ID, SECRET, {
    ...(options.tls && { tls: { certFile: options.tls.certPath, keyFile: options.tls.keyPath } }),
  });
  const { hostname, port } = new URL(fake.url);
  const proxy = await startTcpProxy({ target: { host: hostname, port: Number(port) } });
  const gateways = await startReplicas({
    replicas: 3,
    secret: SECRET,
    clients: CLIENTS,
    fakeUrl: proxy.url(options.tls ? 'https' : 'http'),
    env: {
      REDIS_URL: redis.url,
      // Quotas are not under test here: the vendor budget is.
      CLIENT_RATE_LIMIT: '1000',
      ZEGO_CALL_DEADLINE_MS: String(CALL_DEADLINE_MS),
      ...(options.tls && { NODE_EXTRA_CA_CERTS: options.tls.certPath }),
    },
  });
  await Promise.all(gateways.map((g) => waitForLimiterMode(g, 'shared')));
  await warmUp(gateways, KEYS[0]!, 'warm');
  return { fake, proxy, gateways };
}

function load(gateways: readonly GatewayProcess[], roomPrefix: string): Promise<LoadResult> {
  return runLoad({
    gateways,
    keys: KEYS,
    callers: 60,
    durationMs: LOAD_MS,
    requestTimeoutMs: CALL_DEADLINE_MS + 5_000,
    pauseAfterRefusalMs: () => 200 + Math.random() * 200,
    roomPrefix,
  });
}

/** Every answer is a 201, or a 429 carrying a whole-seconds Retry-After; nothing else, nothing lost. */
function unexpectedAnswers(answers: readonly Answer[]): Answer[] {
  return answers.filter((a) => !(a.status === 201 || (a.status === 429 && /^[1-9]\d*$/.test(a.retryAfter ?? ''))));
}

/** What the replicas say of their vendor connections, summed over the fleet. */
async function connectionFigures(gateways: readonly GatewayProcess[]): Promise<Record<string, number>> {
  const scrapes = await Promise.all(gateways.map((g) => scrapeMetrics(g.url)));
  const sum = (name: string, labels: Record<string, string> = {}): number => scrapes.reduce((total, s) => total + metricSum(s, name, labels), 0);
  return {
    openedAhead: sum('zim_gateway_vendor_connect_seconds_count', { when: 'ahead' }),
    openedOnPath: sum('zim_gateway_vendor_connect_seconds_count', { when: 'on_path' }),
    unreadySlots: sum('zim_gateway_outbound_unready_slots_total'),
    lateSlots: sum('zim_gateway_outbound_late_slots_total'),
    resends: sum('zim_gateway_vendor_resends_total'),
    idle: sum('zim_gateway_vendor_connections', { state: 'idle' }),
    busy: sum('zim_gateway_vendor_connections', { state: 'busy' }),
  };
}

interface PathRun {
  figures: FleetFigures;
  answers: readonly Answer[];
  connections: Record<string, number>;
}

/** One saturated run; `roomPrefix` keeps its rooms apart (room ids are at most 32 characters). */
async function run(path: Path, name: string, roomPrefix: string): Promise<PathRun> {
  const before = (await path.fake.calls()).length;
  const result = await load(path.gateways, roomPrefix);
  const calls = (await path.fake.calls()).slice(before);
  const figures = fleetFigures(calls, result, {
    qpsLimit: QPS,
    windowMs: WINDOW_MS,
    saturatedFrom: result.startedAt + 1000,
    saturatedUntil: result.stoppedAt,
  });
  const connections = await connectionFigures(path.gateways);
  process.stdout.write(
    `\n${name}: worst window ${figures.maxInAnyWindow}, refusals ${figures.vendorRefusals}, ` +
      `${figures.roomsPerSecond.toFixed(2)} rooms/s (${percent(figures.budgetShare)}), 201 p50 ${figures.createdLatencyP50Ms.toFixed(0)} ms ` +
      `p99 ${figures.createdLatencyP99Ms.toFixed(0)} ms; connections ${JSON.stringify(connections)}\n`,
  );
  return { figures, answers: result.answers, connections };
}

function capAndBudget({ figures, connections }: PathRun): Criterion[] {
  return [
    criterion(`no window of ${WINDOW_MS} ms over ${QPS} calls`, figures.maxInAnyWindow <= QPS, figures.maxInAnyWindow),
    criterion('no vendor refusal (660300005)', figures.vendorRefusals === 0, figures.vendorRefusals),
    criterion('at least 95% of the budget turned into rooms', figures.budgetShare >= 0.95, percent(figures.budgetShare)),
    // Counted since each fleet started: no call ever opened a connection on its slot's path.
    criterion('no connection opened on a call\'s path', connections.openedOnPath === 0, connections.openedOnPath),
  ];
}

/** Shapes the path; the fake answers in [minMs, maxMs]. */
async function shape(path: Path, shaping: Shaping, answer: { minMs: number; maxMs: number }): Promise<void> {
  await path.proxy.shape(shaping);
  await path.fake.setAnswerTime(answer);
}

const oneWay = (delayMs: number, jitterMs = 0): Pick<Shaping, 'upstream' | 'downstream'> => ({
  upstream: { delayMs, jitterMs },
  downstream: { delayMs, jitterMs },
});

let redis: TestRedis;

beforeAll(async () => {
  redis = await startPrivateRedis();
}, 30_000);

afterAll(async () => {
  await stopAllGateways();
  await stopAllTcpProxies();
  await stopAllRedis();
});

describe('three replicas reaching the vendor over a wide-area path (plain HTTP through a TCP proxy)', () => {
  let path: Path;

  beforeAll(async () => {
    path = await startPath(redis);
  }, 120_000);

  afterAll(async () => {
    await path?.fake.process.stop();
  });

  it('holds the cap with 80 ms to set up each new connection, 40 ms each way, answers of 100-300 ms', async () => {
    await shape(path, { setupDelayMs: 80, ...oneWay(40) }, { minMs: 100, maxMs: 300 });
    const result = await run(path, 'setup 80 ms, one-way 40 ms, answers 100-300 ms', 's80');
    expect(unexpectedAnswers(result.answers)).toEqual([]);
    expect(unmet(capAndBudget(result))).toEqual([]);
  });

  it('holds the cap with 250 ms handshakes, 20 ms each way and 20 ms of jitter, answers of 50-500 ms', async () => {
    await shape(path, { setupDelayMs: 250, ...oneWay(20, 20) }, { minMs: 50, maxMs: 500 });
    const result = await run(path, 'setup 250 ms, one-way 20-40 ms, answers 50-500 ms', 's250');
    expect(unexpectedAnswers(result.answers)).toEqual([]);
    expect(unmet(capAndBudget(result))).toEqual([]);
  });

  it('holds the cap 100 ms away each way with 20 ms of jitter, 80 ms handshakes, answers of 100-300 ms', async () => {
    await shape(path, { setupDelayMs: 80, ...oneWay(100, 20) }, { minMs: 100, maxMs: 300 });
    const result = await run(path, 'setup 80 ms, one-way 100-120 ms, answers 100-300 ms', 'w100');
    expect(unexpectedAnswers(result.answers)).toEqual([]);
    expect(unmet(capAndBudget(result))).toEqual([]);
  });

  it('loses no request and sends no late call while the vendor closes idle connections after a short keep-alive', async () => {
    await shape(path, { setupDelayMs: 80, ...oneWay(20) }, { minMs: 50, maxMs: 150 });
    // Node's agent honours the vendor's Keep-Alive hint less a second: 2 s announced, 1 s kept.
    await path.fake.setKeepAliveTimeout(2_000);
    try {
      const result = await run(path, 'vendor keep-alive 2 s, setup 80 ms, one-way 20 ms, answers 50-150 ms', 'ka2');
      expect(unexpectedAnswers(result.answers)).toEqual([]);
      expect(unmet(capAndBudget(result))).toEqual([]);
    } finally {
      await path.fake.setKeepAliveTimeout(5_000);
    }
  });
});

describe('the same over HTTPS (the fake behind a self-signed certificate the gateways trust)', () => {
  let certificate: TestCertificate;
  let path: Path;

  beforeAll(async () => {
    certificate = await createTestCertificate();
    path = await startPath(redis, { tls: certificate });
  }, 120_000);

  afterAll(async () => {
    await path?.fake.process.stop();
    certificate?.remove();
  });

  it('holds the cap with 80 ms handshakes and 40 ms each way, reusing connections and TLS sessions', async () => {
    await shape(path, { setupDelayMs: 80, ...oneWay(40) }, { minMs: 100, maxMs: 300 });
    const before = await path.fake.connections();
    const result = await run(path, 'HTTPS, setup 80 ms, one-way 40 ms, answers 100-300 ms', 'tls');
    const after = await path.fake.connections();
    const opened = after.opened - before.opened;
    const created = result.answers.filter((a) => a.status === 201).length;
    process.stdout.write(`HTTPS: ${opened} connections opened for ${created} rooms; TLS sessions resumed ${after.tlsSessionsReused! - before.tlsSessionsReused!}\n`);

    expect(unexpectedAnswers(result.answers)).toEqual([]);
    expect(
      unmet([
        ...capAndBudget(result),
        criterion('connections are reused: far fewer opened than rooms created', opened * 4 <= created, `${opened} for ${created}`),
        criterion(
          'new connections resume a TLS session',
          opened === 0 || after.tlsSessionsReused! - before.tlsSessionsReused! >= Math.floor(opened / 2),
          `${after.tlsSessionsReused! - before.tlsSessionsReused!} of ${opened}`,
        ),
      ]),
    ).toEqual([]);
  });
});
