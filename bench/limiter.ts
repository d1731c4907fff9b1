/**
 * `npm run bench:limiter`: the fleet scenario (three gateway replicas, one Redis, the fake ZIM
 * vendor, sixty impatient callers asking for far more than the budget) run twice on the same
 * traffic: once with our sliding-log limiter, once with a fixed-window Redis limiter
 * (rate-limiter-flexible) as the baseline. Figures come from what the fake recorded at its door.
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

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECRET = 'bench-secret-not-a-real-one-7f3a';
const CLIENTS = { 'bench-a': 'bench-key-a-0001', 'bench-b': 'bench-key-b-0002', 'bench-c': 'bench-key-c-0003' };
const QPS = 20;
const WINDOW_MS = 1000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);

const VARIANTS = [
  { name: 'sliding log (ours)', script: path.join(ROOT, 'dist/main.js') },
  { name: 'fixed window (baseline)', script: path.join(ROOT, 'dist-bench/bench/fixed-window-gateway.js') },
];

async function runVariant(name: string, script: string, redisUrl: string): Promise<FleetFigures> {
  process.stdout.write(`running ${name} for ${SECONDS} s ...\n`);
  const fake = await startFakeZimProcess(FLEET_APP_ID, SECRET, path.join(ROOT, 'dist-bench/test/fake-zim/main.js'));
  try {
    const gateways = await startReplicas({
      replicas: 3,
      secret: SECRET,
      clients: CLIENTS,
      fakeUrl: fake.url,
      script,
      env: {
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: `bench-${Date.now()}`,
        CLIENT_RATE_LIMIT: '1000',
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
    return fleetFigures(calls, load, {
      qpsLimit: QPS,
      windowMs: WINDOW_MS,
      saturatedFrom: load.startedAt + 1000,
      saturatedUntil: load.stoppedAt,
    });
  } finally {
    await stopAllGateways();
    await fake.process.stop();
  }
}

function row(cells: Array<string | number>): string {
  return cells.map((cell, i) => String(cell).padEnd(i === 0 ? 26 : 14)).join('');
}

async function main(): Promise<void> {
  const redis = await startPrivateRedis();
  const results: Array<[string, FleetFigures]> = [];
  try {
    for (const variant of VARIANTS) results.push([variant.name, await runVariant(variant.name, variant.script, redis.url)]);
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
  const [ours, baseline] = results.map(([, f]) => f) as [FleetFigures, FleetFigures];
  process.stdout.write(
    `\nours / baseline: rooms per second x${(ours.roomsPerSecond / baseline.roomsPerSecond).toFixed(2)}, ` +
      `most calls in one window x${(ours.maxInAnyWindow / baseline.maxInAnyWindow).toFixed(2)}, ` +
      `vendor refusals ${ours.vendorRefusals} vs ${baseline.vendorRefusals}\n`,
  );
  process.stdout.write(`statuses (ours): ${JSON.stringify(ours.statuses)}; (baseline): ${JSON.stringify(baseline.statuses)}\n`);
}

main().catch(async (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await stopAllGateways();
  await stopAllRedis();
  process.exit(1);
});
