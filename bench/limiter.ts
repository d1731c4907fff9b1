/**
 * `npm run bench:limiter`: the fleet scenario (three gateway replicas, one Redis, the fake ZIM
 * vendor, sixty impatient callers asking for far more than the budget) run on the same traffic:
 * - over loopback, with our limiter and with a fixed-window Redis limiter (rate-limiter-flexible)
 *   as the baseline;
 * - over wide-area paths (a TCP proxy in its own process between the gateways and the fake, with
 *   a set-up delay per new connection, a one-way delay and jitter, the fake answering in a spread
 *   of times), with warm vendor connections and, as the baseline, on-demand ones
 *   (ZEGO_WARM_CONNECTIONS=false: a connection opened on a call's path when none is idle).
 * Figures come from what the fake recorded at its door.
 *
 * BENCH_SECONDS (default 15) sets the length of each run.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopAllGateways } from '../test/support/gateway-process.js';
import {
  FLEET_APP_ID,
  fleetFigures,
  runLoad,
  startFakeZimProcess,
  startReplicas,
  waitForLimiterMode,
  warmUp,
  type FleetFigures,
} from '../test/support/fleet.js';
import { startPrivateRedis, stopAllRedis } from '../test/support/redis-server.js';
import { startTcpProxy, stopAllTcpProxies, type Shaping } from '../test/support/tcp-proxy-process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECRET = 'bench-secret-not-a-real-one-7f3a';
const CLIENTS = { 'bench-a': 'bench-key-a-0001', 'bench-b': 'bench-key-b-0002', 'bench-c': 'bench-key-c-0003' };
const QPS = 20;
const WINDOW_MS = 1000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);

const OURS = path.join(ROOT, 'dist/main.js');
const VARIANTS = [
  { name: 'sliding log (ours)', script: OURS },
  { name: 'fixed window (baseline)', script: path.join(ROOT, 'dist-bench/bench/fixed-window-gateway.js') },
];

/** A wide-area path between the gateways and the vendor, and how the vendor answers over it. */
interface WidePath {
  name: string;
  shaping: Shaping;
  answerTimeMs: { minMs: number; maxMs: number };
}

const oneWay = (delayMs: number, jitterMs = 0): Pick<Shaping, 'upstream' | 'downstream'> => ({
  upstream: { delayMs, jitterMs },
  downstream: { delayMs, jitterMs },
});

const PATHS: WidePath[] = [
  { name: 'loopback, answers 100-300 ms', shaping: {}, answerTimeMs: { minMs: 100, maxMs: 300 } },
  { name: 'set-up 80 ms, 40 ms each way, answers 100-300 ms', shaping: { setupDelayMs: 80, ...oneWay(40) }, answerTimeMs: { minMs: 100, maxMs: 300 } },
  {
    name: 'set-up 250 ms, 20-40 ms each way, answers 50-500 ms',
    shaping: { setupDelayMs: 250, ...oneWay(20, 20) },
    answerTimeMs: { minMs: 50, maxMs: 500 },
  },
];

const CONNECTIONS: Array<{ name: string; env: Record<string, string> }> = [
  { name: 'warm (ours)', env: {} },
  { name: 'on demand (baseline)', env: { ZEGO_WARM_CONNECTIONS: 'false' } },
];

interface VariantFigures extends FleetFigures {
  /** Connections whose first call came during the load: the ones the replicas had to open for it. */
  connectionsOpened: number;
}

async function runVariant(
  name: string,
  script: string,
  redisUrl: string,
  options: { path?: WidePath; env?: Record<string, string> } = {},
): Promise<VariantFigures> {
  process.stdout.write(`running ${name} for ${SECONDS} s ...\n`);
  const fake = await startFakeZimProcess(FLEET_APP_ID, SECRET, {
    script: path.join(ROOT, 'dist-bench/test/fake-zim/main.js'),
    ...(options.path && { answerTimeMs: options.path.answerTimeMs }),
  });
  try {
    let vendorUrl = fake.url;
    if (options.path) {
      const { hostname, port } = new URL(fake.url);
      const proxy = await startTcpProxy({
        target: { host: hostname, port: Number(port) },
        shaping: options.path.shaping,
        script: path.join(ROOT, 'dist-bench/test/support/tcp-proxy-main.js'),
      });
      vendorUrl = proxy.url('http');
    }
    const gateways = await startReplicas({
      replicas: 3,
      secret: SECRET,
      clients: CLIENTS,
      fakeUrl: vendorUrl,
      script,
      env: {
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: `bench-${Date.now()}`,
        CLIENT_RATE_LIMIT: '1000',
        ...options.env,
      },
    });
    // Both variants reach Redis in the background after they listen: start once every replica has.
    await Promise.all(gateways.map((gateway) => waitForLimiterMode(gateway, 'shared')));
    const keys = Object.values(CLIENTS);
    await warmUp(gateways, keys[0]!, `warm-${Date.now()}`);
    const before = (await fake.calls()).length;
    const load = await runLoad({
      gateways,
      keys,
      callers: 60,
      durationMs: SECONDS * 1000,
      requestTimeoutMs: 20_000,
      pauseAfterRefusalMs: () => 200 + Math.random() * 200,
      roomPrefix: `bench-${Date.now()}`,
    });
    const calls = (await fake.calls()).slice(before);
    const connectionsOpened = calls.filter((call) => call.requestOnConnection === 1).length;
    const figures = fleetFigures(calls, load, {
      qpsLimit: QPS,
      windowMs: WINDOW_MS,
      saturatedFrom: load.startedAt + 1000,
      saturatedUntil: load.stoppedAt,
    });
    return { ...figures, connectionsOpened };
  } finally {
    await stopAllGateways();
    await stopAllTcpProxies();
    await fake.process.stop();
  }
}

function row(cells: Array<string | number>): string {
  return cells.map((cell, i) => String(cell).padEnd(i === 0 ? 26 : 14)).join('');
}

async function main(): Promise<void> {
  const redis = await startPrivateRedis();
  const results: Array<[string, VariantFigures]> = [];
  const wide: Array<{ path: string; connections: string; figures: VariantFigures }> = [];
  try {
    for (const variant of VARIANTS) results.push([variant.name, await runVariant(variant.name, variant.script, redis.url)]);
    for (const wanPath of PATHS) {
      for (const connections of CONNECTIONS) {
        const figures = await runVariant(`${wanPath.name}, ${connections.name}`, OURS, redis.url, { path: wanPath, env: connections.env });
        wide.push({ path: wanPath.name, connections: connections.name, figures });
      }
    }
  } finally {
    await stopAllRedis();
  }

  const cpus = os.cpus();
  process.stdout.write(
    `\nmachine: ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
      `node ${process.version}, ${os.platform()} ${os.release()}\n` +
      `scenario: 3 replicas, 60 callers, ${SECONDS} s, budget ${QPS} calls per ${WINDOW_MS} ms\n\n`,
  );
  process.stdout.write(
    row(['limiter', 'max in 1 s', '660300005', 'rooms/s', 'of budget', '201 p50 ms', '201 p99 ms', 'offered/s']) + '\n',
  );
  for (const [name, f] of results) {
    process.stdout.write(
      row([
        name,
        f.maxInAnyWindow,
        f.vendorRefusals,
        f.roomsPerSecond.toFixed(2),
        `${(f.budgetShare * 100).toFixed(1)}%`,
        f.createdLatencyP50Ms.toFixed(0),
        f.createdLatencyP99Ms.toFixed(0),
        f.offeredPerSecond.toFixed(1),
      ]) + '\n',
    );
  }
  const [ours, baseline] = results.map(([, f]) => f) as [VariantFigures, VariantFigures];
  process.stdout.write(
    `\nours / baseline: rooms per second x${(ours.roomsPerSecond / baseline.roomsPerSecond).toFixed(2)}, ` +
      `most calls in one window x${(ours.maxInAnyWindow / baseline.maxInAnyWindow).toFixed(2)}, ` +
      `vendor refusals ${ours.vendorRefusals} vs ${baseline.vendorRefusals}\n`,
  );
  process.stdout.write(`statuses (ours): ${JSON.stringify(ours.statuses)}; (baseline): ${JSON.stringify(baseline.statuses)}\n`);

  process.stdout.write(`\nover wide-area paths (a TCP proxy between the gateways and the fake), our limiter:\n`);
  process.stdout.write(wideRow(['path', 'connections', 'max in 1 s', '660300005', 'rooms/s', 'of budget', 'new conns']) + '\n');
  for (const { path: pathName, connections, figures: f } of wide) {
    process.stdout.write(
      wideRow([
        pathName,
        connections,
        f.maxInAnyWindow,
        f.vendorRefusals,
        f.roomsPerSecond.toFixed(2),
        `${(f.budgetShare * 100).toFixed(1)}%`,
        f.connectionsOpened,
      ]) + '\n',
    );
  }
  process.stdout.write('\nwarm / on demand:\n');
  for (const wanPath of PATHS) {
    const [warm, onDemand] = CONNECTIONS.map((c) => wide.find((w) => w.path === wanPath.name && w.connections === c.name)!.figures) as [
      VariantFigures,
      VariantFigures,
    ];
    process.stdout.write(
      `  ${wanPath.name}: most calls in one window ${warm.maxInAnyWindow} vs ${onDemand.maxInAnyWindow}, ` +
        `refusals ${warm.vendorRefusals} vs ${onDemand.vendorRefusals}, rooms per second x${(warm.roomsPerSecond / onDemand.roomsPerSecond).toFixed(2)}, ` +
        `new connections during the load ${warm.connectionsOpened} vs ${onDemand.connectionsOpened}\n`,
    );
  }
}

function wideRow(cells: Array<string | number>): string {
  return cells.map((cell, i) => String(cell).padEnd(i === 0 ? 54 : i === 1 ? 22 : 12)).join('');
}

main().catch(async (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await stopAllGateways();
  await stopAllTcpProxies();
  await stopAllRedis();
  process.exit(1);
});
