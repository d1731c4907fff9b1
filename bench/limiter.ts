/**
 * `npm run bench:limiter`: the fleet scenario (three gateway replicas, one Redis, the fake ZIM
 * vendor, sixty impatient callers asking for far more than the budget) run on the same traffic:
 * - over loopback, with our limiter and with a fixed-window Redis limiter (rate-limiter-flexible)
 *   as the baseline;
 * - over wide-area paths (a TCP proxy in its own process between the gateways and the fake, with
 *   a set-up delay per new connection, a one-way delay and jitter, the fake answering in a spread
 *   of times), with warm vendor connections and, as the baseline, on-demand ones
 *   (ZEGO_WARM_CONNECTIONS=false: a connection opened on a call's path when none is idle).
 * - with Redis a round trip of 2, 10, 25, 50 and 100 ms away (a TCP proxy in front of Redis that
 *   delays each way, with a little jitter): first one caller with one request at a time (each
 *   request alone, granted a slot for "now"), then the sixty callers; the fleet's limiter mode at
 *   the end is read from each replica's /metrics.
 * Figures come from what the fake recorded at its door.
 *
 * Each row also reports how late our replicas put calls on the wire after their slot (their
 * slot-to-wire histogram over the load), against the safety margin. With BENCH_TRACING=1 our
 * replicas run as `npm start` runs them with OpenTelemetry tracing on, exporting every span to a
 * stand-in OTLP receiver in this process (the fixed-window baseline runs as it is).
 *
 * BENCH_SECONDS (default 15) sets the length of each run. BENCH_ROWS picks the parts to run, a
 * comma-separated list of `main` (ours and the fixed window over loopback), `wide` (wide-area
 * paths to the vendor) and `redis` (Redis round trips); all three by default. A row that does not
 * end within its bound (the run, plus a minute for start, warm-up and the callers' timeouts) is
 * stopped and printed as `did not complete`.
 */
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stopAllGateways } from '../test/support/gateway-process.js';
import {
  FLEET_APP_ID,
  fleetFigures,
  percentile,
  runLoad,
  startFakeZimProcess,
  startReplicas,
  waitForLimiterMode,
  warmUp,
  type FleetFigures,
} from '../test/support/fleet.js';
import { metricSum, scrapeMetrics } from '../test/support/prometheus-text.js';
import { startPrivateRedis, stopAllRedis } from '../test/support/redis-server.js';
import { startTcpProxy, stopAllTcpProxies, type Shaping } from '../test/support/tcp-proxy-process.js';
import { OtlpReceiver } from '../test/support/otlp-receiver.js';
import { formatWireLateness, scrapeAll, wireLateness, type WireLateness } from './slot-to-wire.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECRET = 'bench-secret-not-a-real-one-7f3a';
const CLIENTS = { 'bench-a': 'bench-key-a-0001', 'bench-b': 'bench-key-b-0002', 'bench-c': 'bench-key-c-0003' };
const QPS = 20;
const WINDOW_MS = 1000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const ROWS = new Set((process.env.BENCH_ROWS ?? 'main,wide,redis').split(',').map((part) => part.trim()));
/** One row's bound beyond its run: starting Redis's proxy, the fake and three replicas, warming them, the callers' timeouts. */
const ROW_SLACK_MS = 60_000;
/** How long the lone caller of a Redis round-trip row asks, one request at a time, and how long it waits for each. */
const ALONE_SECONDS = 3;
const ALONE_TIMEOUT_MS = 12_000;

const OURS = path.join(ROOT, 'dist/main.js');
/** The safety margin the replicas run with (RATE_LIMIT_SAFETY_MARGIN_MS's default). */
const MARGIN_MS = 30;
const TRACING = process.env.BENCH_TRACING === '1';
/** The stand-in collector our replicas export to with BENCH_TRACING=1. */
const collector = new OtlpReceiver();
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

/** Redis a round trip away: a TCP proxy in front of it delays each way by half, a tenth of that as jitter. */
const REDIS_ROUND_TRIPS_MS = [2, 10, 25, 50, 100];
const redisPath = (roundTripMs: number): Shaping => oneWay(roundTripMs / 2, roundTripMs / 20);

const CONNECTIONS: Array<{ name: string; env: Record<string, string> }> = [
  { name: 'warm (ours)', env: {} },
  { name: 'on demand (baseline)', env: { ZEGO_WARM_CONNECTIONS: 'false' } },
];

interface VariantFigures extends FleetFigures {
  /** Connections whose first call came during the load: the ones the replicas had to open for it. */
  connectionsOpened: number;
  /** Each replica's limiter mode once the load was over (zim_gateway_outbound_limiter_mode). */
  modes: string[];
  /** With a lone caller first (the Redis round-trip rows): its requests, their p99 and the ones left without an answer. */
  alone?: { requests: number; p99Ms: number; unanswered: number };
  /** How late the replicas wired their calls after their slots during the load. */
  wire: WireLateness;
}

const DID_NOT_COMPLETE = 'did not complete';
/** A row's figures, or why it has none: `did not complete`, and what stopped it. */
type RowOutcome = VariantFigures | string;

async function runVariant(
  name: string,
  script: string,
  redisUrl: string,
  options: { path?: WidePath; env?: Record<string, string>; redisPath?: Shaping } = {},
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
    let replicasRedisUrl = redisUrl;
    if (options.redisPath) {
      // Redis that far from the replicas from their start on, as a Redis in another zone is.
      const proxy = await startTcpProxy({
        target: `127.0.0.1:${new URL(redisUrl).port}`,
        shaping: options.redisPath,
        script: path.join(ROOT, 'dist-bench/test/support/tcp-proxy-main.js'),
      });
      replicasRedisUrl = proxy.url('redis');
    }
    const traced = TRACING && script === OURS;
    const gateways = await startReplicas({
      replicas: 3,
      secret: SECRET,
      clients: CLIENTS,
      fakeUrl: vendorUrl,
      script,
      ...(traced && { nodeOptions: ['--enable-source-maps', '--import', path.join(ROOT, 'dist/tracing/preload.js')] }),
      env: {
        REDIS_URL: replicasRedisUrl,
        REDIS_KEY_PREFIX: `bench-${Date.now()}`,
        CLIENT_RATE_LIMIT: '1000',
        ...(traced && { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: 'bench-limiter' }),
        ...options.env,
      },
    });
    // Both variants reach Redis in the background after they listen: start once every replica has.
    await Promise.all(gateways.map((gateway) => waitForLimiterMode(gateway, 'shared')));
    const keys = Object.values(CLIENTS);
    await warmUp(gateways, keys[0]!, `warm-${Date.now()}`);
    const alone = options.redisPath ? await loneCaller(gateways, keys[0]!) : undefined;
    const before = (await fake.calls()).length;
    const wiredBefore = await scrapeAll(gateways.map((gateway) => gateway.url));
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
    const modes = await Promise.all(gateways.map((gateway) => limiterMode(gateway.url)));
    const wire = wireLateness(wiredBefore, await scrapeAll(gateways.map((gateway) => gateway.url)));
    process.stdout.write(`  slot to wire: ${formatWireLateness(wire, MARGIN_MS)}${traced ? ` (tracing on, ${collector.spans().length} spans received so far)` : ''}\n`);
    const figures = fleetFigures(calls, load, {
      qpsLimit: QPS,
      windowMs: WINDOW_MS,
      saturatedFrom: load.startedAt + 1000,
      saturatedUntil: load.stoppedAt,
    });
    return { ...figures, connectionsOpened, modes, wire, ...(alone && { alone }) };
  } finally {
    await stopAllGateways();
    await stopAllTcpProxies();
    await fake.process.stop();
  }
}

/** One caller, one request at a time for ALONE_SECONDS (each request alone: nobody queued, a free slot at once). */
async function loneCaller(gateways: Parameters<typeof runLoad>[0]['gateways'], key: string): Promise<VariantFigures['alone']> {
  const load = await runLoad({
    gateways,
    keys: [key],
    callers: 1,
    durationMs: ALONE_SECONDS * 1000,
    requestTimeoutMs: ALONE_TIMEOUT_MS,
    pauseAfterRefusalMs: () => 200 + Math.random() * 200,
    roomPrefix: `alone-${Date.now()}`,
  });
  return {
    requests: load.answers.length,
    p99Ms: percentile(
      load.answers.map((a) => a.latencyMs),
      0.99,
    ),
    unanswered: load.answers.filter((a) => a.error !== undefined).length,
  };
}

/** The limiter's mode from the replica's gauge, or `unknown` when /metrics did not say. */
async function limiterMode(url: string): Promise<string> {
  try {
    const samples = await scrapeMetrics(url);
    return ['shared', 'local', 'reject'].find((mode) => metricSum(samples, 'zim_gateway_outbound_limiter_mode', { mode }) === 1) ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The modes of a fleet as one cell: `shared x3`, or each replica's. */
function modesCell(modes: readonly string[]): string {
  return modes.every((mode) => mode === modes[0]) ? `${modes[0]} x${modes.length}` : modes.join(',');
}

/**
 * A row within its bound: when the bound passes first, every replica is stopped (the load's
 * requests then fail at once and the row's own clean-up runs) and the row did not complete; so
 * does a row that failed on its way (a warm-up call left without an answer), its reason printed.
 */
async function bounded(name: string, figures: Promise<VariantFigures>, boundMs: number): Promise<RowOutcome> {
  const timeout = new AbortController();
  const expired = sleep(boundMs, DID_NOT_COMPLETE, { signal: timeout.signal }).catch(() => DID_NOT_COMPLETE);
  let outcome: RowOutcome;
  try {
    outcome = await Promise.race<RowOutcome>([figures, expired as Promise<typeof DID_NOT_COMPLETE>]);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    process.stdout.write(`${name}: ${DID_NOT_COMPLETE}: ${reason}\n`);
    return `${DID_NOT_COMPLETE} (${reason.slice(0, 80)})`;
  } finally {
    timeout.abort();
  }
  if (outcome !== DID_NOT_COMPLETE) return outcome;
  process.stdout.write(`${name}: ${DID_NOT_COMPLETE} within ${Math.round(boundMs / 1000)} s; stopping it\n`);
  await stopAllGateways();
  await figures.catch(() => undefined);
  return `${DID_NOT_COMPLETE} (within ${Math.round(boundMs / 1000)} s)`;
}

function row(cells: Array<string | number>): string {
  return cells.map((cell, i) => String(cell).padEnd(i === 0 ? 26 : 14)).join('');
}

async function main(): Promise<void> {
  if (TRACING) await collector.start();
  const redis = await startPrivateRedis();
  const results: Array<[string, VariantFigures]> = [];
  const wide: Array<{ path: string; connections: string; figures: VariantFigures }> = [];
  const roundTrips: Array<{ roundTripMs: number; outcome: RowOutcome }> = [];
  const started = Date.now();
  try {
    if (ROWS.has('main')) {
      for (const variant of VARIANTS) results.push([variant.name, await runVariant(variant.name, variant.script, redis.url)]);
    }
    if (ROWS.has('wide')) {
      for (const wanPath of PATHS) {
        for (const connections of CONNECTIONS) {
          const figures = await runVariant(`${wanPath.name}, ${connections.name}`, OURS, redis.url, { path: wanPath, env: connections.env });
          wide.push({ path: wanPath.name, connections: connections.name, figures });
        }
      }
    }
    if (ROWS.has('redis')) {
      for (const roundTripMs of REDIS_ROUND_TRIPS_MS) {
        const name = `Redis ${roundTripMs} ms round trip`;
        const outcome = await bounded(name, runVariant(name, OURS, redis.url, { redisPath: redisPath(roundTripMs) }), (ALONE_SECONDS + SECONDS) * 1000 + ROW_SLACK_MS);
        roundTrips.push({ roundTripMs, outcome });
      }
    }
  } finally {
    await stopAllRedis();
    await collector.stop();
  }

  const cpus = os.cpus();
  process.stdout.write(
    `\nmachine: ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
      `node ${process.version}, ${os.platform()} ${os.release()}\n` +
      `scenario: 3 replicas, 60 callers, ${SECONDS} s, budget ${QPS} calls per ${WINDOW_MS} ms; took ${Math.round((Date.now() - started) / 1000)} s, ` +
      `load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`,
  );
  if (results.length > 0) printMain(results);
  if (wide.length > 0) printWide(wide);
  if (roundTrips.length > 0) printRoundTrips(roundTrips);
  printWireLateness([
    ...results.map(([name, f]) => ({ name, f })),
    ...wide.map((w) => ({ name: `${w.path}, ${w.connections}`, f: w.figures })),
    ...roundTrips.flatMap(({ roundTripMs, outcome }) => (typeof outcome === 'string' ? [] : [{ name: `Redis ${roundTripMs} ms round trip`, f: outcome }])),
  ]);
}

function printWireLateness(rows: Array<{ name: string; f: VariantFigures }>): void {
  const tracing = TRACING ? `our replicas with tracing on (${collector.spans().length} spans received in all)` : 'tracing off';
  process.stdout.write(`\nslot to wire during the load (the replicas' histogram; safety margin ${MARGIN_MS} ms), ${tracing}:\n`);
  for (const { name, f } of rows) process.stdout.write(`  ${name.padEnd(58)} ${formatWireLateness(f.wire, MARGIN_MS)}\n`);
}

function printMain(results: Array<[string, VariantFigures]>): void {
  process.stdout.write(
    '\n' + row(['limiter', 'max in 1 s', '660300005', 'rooms/s', 'of budget', '201 p50 ms', '201 p99 ms', 'offered/s']) + '\n',
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
}

function printWide(wide: Array<{ path: string; connections: string; figures: VariantFigures }>): void {
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

function printRoundTrips(roundTrips: Array<{ roundTripMs: number; outcome: RowOutcome }>): void {
  process.stdout.write(
    `\nwith Redis a round trip away (a TCP proxy in front of Redis, half each way, a tenth of it as jitter), our limiter; ` +
      `first one caller alone for ${ALONE_SECONDS} s (each request timing out after ${ALONE_TIMEOUT_MS / 1000} s), then the 60 callers:\n`,
  );
  process.stdout.write(
    redisRow(['Redis round trip', 'max in 1 s', '660300005', 'of budget', '201 p99 ms', 'no answer', 'mode at the end', 'alone: p99 ms', 'alone: no answer']) + '\n',
  );
  for (const { roundTripMs, outcome: f } of roundTrips) {
    const name = `${roundTripMs} ms`;
    if (typeof f === 'string') {
      process.stdout.write(redisRow([name, f]) + '\n');
      continue;
    }
    process.stdout.write(
      redisRow([
        name,
        f.maxInAnyWindow,
        f.vendorRefusals,
        `${(f.budgetShare * 100).toFixed(1)}%`,
        f.createdLatencyP99Ms.toFixed(0),
        f.statuses['no answer'] ?? 0,
        modesCell(f.modes),
        f.alone ? f.alone.p99Ms.toFixed(0) : '-',
        f.alone ? `${f.alone.unanswered} of ${f.alone.requests}` : '-',
      ]) + '\n',
    );
  }
}

function redisRow(cells: Array<string | number>): string {
  const widths = [18, 12, 12, 12, 12, 12, 18, 15, 16];
  return cells.map((cell, i) => String(cell).padEnd(widths[i] ?? 12)).join('');
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
