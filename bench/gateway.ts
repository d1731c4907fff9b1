/**
 * `npm run bench`: what the gateway costs, each figure beside a baseline measured in the same run.
 *
 * 1. Start-up: spawn → first 200 from GET /health/ready, median of several runs; baseline: a bare
 *    NestJS app (bench/bare-nest-app.ts), spawn → its first answer. Then the gateway as the image
 *    runs it (--enable-source-maps) against the gateway without.
 * 2. Latency added: p50/p99 of POST /rooms through the gateway at a fixed rate (15/s, unique
 *    roomIds, open loop), against signed CreateRoom calls sent straight to the fake ZIM at the
 *    same rate. Gateway without Redis (in-process limiter and quotas); then, when redis-server is
 *    on the PATH, again with a private Redis (the shared limiter, as a fleet runs it), alternated
 *    with the same gateway on the first-come-first-served limiter it had before the fair
 *    scheduler (bench/fcfs-gateway.ts): what the new scheduler adds at light load, one client.
 * 3. Refusal capacity: answers per second at full load (autocannon, 50 connections) for 401 (bad
 *    key), 400 (bad body, valid key) and 429 (client quota 1/s), against the bare NestJS app's
 *    401 route; the baseline runs before and after the gateway's runs.
 * 4. Memory: RSS of a fresh replica after 60 s of mixed load (201, 400, 401, 429), beside the bare
 *    app's RSS after the same time at the same rate (all 401).
 * 5. Tracing: p50/p99 of POST /rooms at the same rate with OpenTelemetry tracing on, exporting to
 *    a stand-in OTLP receiver in this process, against the same gateway with tracing off, both
 *    started as `npm start` starts them (the preload), alternated; and start-up with the preload
 *    (tracing off) against without it.
 *
 * Every service is its own process: the fake ZIM (dist-bench/test/fake-zim/main.js), the gateway
 * (dist-bench/src/main.js, this build's own copy) and the bare app; this process generates load.
 *
 * Knobs (defaults in brackets): BENCH_SMOKE=1 shortens everything to a smoke test;
 * BENCH_STARTUP_RUNS [5], BENCH_RATE [15], BENCH_LATENCY_SECONDS [30], BENCH_REFUSAL_SECONDS [10],
 * BENCH_CONNECTIONS [50], BENCH_WARMUP_SECONDS [2], BENCH_MEMORY_SECONDS [60],
 * BENCH_MIX_RATE [40], BENCH_REDIS [1 when redis-server is on the PATH; 0 skips].
 * Exits 1 when anything went wrong: a service failed, a request got no answer, or an answer was
 * not the one the scenario expects.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { ZegoSigner } from '../src/zego/zego-signer.js';
import { apiKeysValue } from '../test/support/api-keys.js';
import { FLEET_APP_ID, percentile, startFakeZimProcess, type FakeZimProcess } from '../test/support/fleet.js';
import { stopAllGateways } from '../test/support/gateway-process.js';
import { OtlpReceiver } from '../test/support/otlp-receiver.js';
import { startPrivateRedis, stopAllRedis } from '../test/support/redis-server.js';
import { countBy, type Exchange, keepAliveAgent, knob, median, metricValue, paced, post, rssBytes, type Service, SMOKE, startService, stopAllServices } from './bench-support.js';
import { type StageMedians, stageMedians } from './request-stages.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GATEWAY_SCRIPT = path.join(ROOT, 'dist-bench/src/main.js');
const BARE_SCRIPT = path.join(ROOT, 'dist-bench/bench/bare-nest-app.js');
const FCFS_SCRIPT = path.join(ROOT, 'dist-bench/bench/fcfs-gateway.js');
const FAKE_SCRIPT = path.join(ROOT, 'dist-bench/test/fake-zim/main.js');
/** As `npm start` runs the gateway: the tracing preload before the application, and source maps. */
const NPM_START_OPTIONS = ['--enable-source-maps', '--import', path.join(ROOT, 'dist-bench/src/tracing/preload.js')];

const SECRET = 'bench-secret-not-a-real-one-4c1e';
const APP_ID = FLEET_APP_ID;
const OPERATOR = 'bench-operator';
/** client id → API key. `bench-quota` has a quota of 1 request per second. */
const CLIENTS = { 'bench-a': 'bench-key-a-0001', 'bench-quota': 'bench-key-q-0002' } as const;
const BAD_KEY = 'not-a-known-key-0000';

// ------------------------------------------------------------------ knobs

const STARTUP_RUNS = Math.max(1, Math.round(knob('BENCH_STARTUP_RUNS', 5, 2)));
const RATE = knob('BENCH_RATE', 15, 15);
const LATENCY_SECONDS = knob('BENCH_LATENCY_SECONDS', 30, 3);
const REFUSAL_SECONDS = knob('BENCH_REFUSAL_SECONDS', 10, 2);
const CONNECTIONS = Math.max(1, Math.round(knob('BENCH_CONNECTIONS', 50, 50)));
const WARMUP_SECONDS = knob('BENCH_WARMUP_SECONDS', 2, 1);
const MEMORY_SECONDS = knob('BENCH_MEMORY_SECONDS', 60, 5);
const MIX_RATE = knob('BENCH_MIX_RATE', 40, 40);
const WITH_REDIS = process.env.BENCH_REDIS === undefined || process.env.BENCH_REDIS === '' ? hasRedisServer() : process.env.BENCH_REDIS !== '0';

function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------ run state

const LOG_DIR = mkdtempSync(path.join(os.tmpdir(), 'zim-gateway-bench-'));
const RUN = Date.now().toString(36);
/** Everything that went wrong; any entry makes the run exit 1. */
const failures: string[] = [];
const rows: Array<{ figure: string; gateway: string; baseline: string; ratio: string; note: string }> = [];

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** The machine's 1-minute load average: above ~2 on 2 cores, something else is competing. */
function load(): string {
  return `load average ${os.loadavg()[0]!.toFixed(2)}`;
}

function check(ok: boolean, what: string): void {
  if (!ok) {
    failures.push(what);
    say(`  !! ${what}`);
  }
}

const ms = (value: number): string => value.toFixed(1);
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const ratio = (a: number, b: number): string => `x${(a / b).toFixed(2)}`;

function gatewayEnv(fakeUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ZEGO_APP_ID: String(APP_ID),
    ZEGO_SERVER_SECRET: SECRET,
    ZEGO_API_BASE_URL: fakeUrl,
    ZEGO_DEFAULT_FROM_USER_ID: OPERATOR,
    API_KEYS: apiKeysValue(CLIENTS),
    // Out of the way unless a scenario needs a quota: the bench-quota client keeps 1 per second.
    CLIENT_RATE_LIMIT: '100000',
    CLIENT_RATE_LIMITS: 'bench-quota:1',
    ...extra,
  };
}

function startGateway(
  name: string,
  fakeUrl: string,
  extra: Record<string, string> = {},
  script = GATEWAY_SCRIPT,
  nodeOptions: string[] = [],
): Promise<Service> {
  return startService({
    name,
    script,
    nodeOptions,
    env: gatewayEnv(fakeUrl, extra),
    probe: { method: 'GET', path: '/health/ready', ready: (status) => status === 200 },
    logDir: LOG_DIR,
  });
}

function startBare(name: string, adapter: 'express' | 'fastify' = 'express'): Promise<Service> {
  return startService({
    name,
    script: BARE_SCRIPT,
    env: { BARE_ADAPTER: adapter },
    probe: { method: 'POST', path: '/rooms' },
    logDir: LOG_DIR,
  });
}

const auth = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

// ------------------------------------------------------------------ 1. start-up

async function startupFigures(fakeUrl: string): Promise<void> {
  say(`\n[1/5] start-up: ${STARTUP_RUNS} runs each, spawn → ready (polled every 5 ms)`);
  say(`  (${load()})`);
  const gateway: number[] = [];
  const mapped: number[] = [];
  const preloaded: number[] = [];
  const bare: number[] = [];
  for (let run = 0; run < STARTUP_RUNS; run++) {
    // Alternated, so drift on the machine touches all three alike.
    const g = await startGateway(`startup-gateway-${run}`, fakeUrl);
    gateway.push(g.spawnToReadyMs);
    await g.stop();
    // As the image and `npm start` run it: source maps read for every module that names one.
    const m = await startGateway(`startup-source-maps-${run}`, fakeUrl, {}, GATEWAY_SCRIPT, ['--enable-source-maps']);
    mapped.push(m.spawnToReadyMs);
    await m.stop();
    // Exactly as `npm start` runs it, no OTLP endpoint: what the tracing preload costs when tracing is off.
    const p = await startGateway(`startup-npm-start-${run}`, fakeUrl, {}, GATEWAY_SCRIPT, NPM_START_OPTIONS);
    preloaded.push(p.spawnToReadyMs);
    await p.stop();
    const b = await startBare(`startup-bare-${run}`);
    bare.push(b.spawnToReadyMs);
    await b.stop();
  }
  say(`  gateway ms: ${gateway.map(ms).join(', ')}`);
  say(`  mapped  ms: ${mapped.map(ms).join(', ')}`);
  say(`  npm start ms: ${preloaded.map(ms).join(', ')}`);
  say(`  bare    ms: ${bare.map(ms).join(', ')}`);
  const range = (values: number[]) => `${ms(Math.min(...values))}-${ms(Math.max(...values))}`;
  const g = median(gateway);
  const m = median(mapped);
  const b = median(bare);
  rows.push({
    figure: `start → ready, median of ${STARTUP_RUNS} (ms)`,
    gateway: ms(g),
    baseline: ms(b),
    ratio: ratio(g, b),
    note: `range ${range(gateway)} vs ${range(bare)}`,
  });
  rows.push({
    figure: `the same with --enable-source-maps (the image's command) vs without (ms)`,
    gateway: ms(m),
    baseline: ms(g),
    ratio: ratio(m, g),
    note: `range ${range(mapped)} vs ${range(gateway)}`,
  });
  const p = median(preloaded);
  rows.push({
    figure: `as npm start runs it (tracing preload, off) vs source maps alone (ms)`,
    gateway: ms(p),
    baseline: ms(m),
    ratio: ratio(p, m),
    note: `range ${range(preloaded)} vs ${range(mapped)}; no OTLP endpoint: the preload imports nothing of the SDK`,
  });
}

// ------------------------------------------------------------------ 2. latency

interface LatencyFigures {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  count: number;
  maxLateMs: number;
}

async function pacedLatency(label: string, send: (i: number) => Promise<Exchange>, ok: (e: Exchange) => boolean): Promise<LatencyFigures> {
  await pacedWarmUp(label, send, ok);
  const count = Math.max(1, Math.round(RATE * LATENCY_SECONDS));
  const result = await paced(RATE, count, send);
  return latencySummary(label, result.samples, result.maxLateMs, ok);
}

/** Warm-up at the same rate (JIT, keep-alive connections), not measured; room ids below 0. */
async function pacedWarmUp(label: string, send: (i: number) => Promise<Exchange>, ok: (e: Exchange) => boolean): Promise<void> {
  const warm = await paced(RATE, Math.max(5, Math.round(RATE * WARMUP_SECONDS)), (i) => send(-1 - i));
  const warmBad = warm.samples.filter((e) => !ok(e));
  check(warmBad.length === 0, `${label}: ${warmBad.length} warm-up answers were wrong: ${describe(warmBad[0])}`);
}

/** Checks every answer, prints the percentiles and returns them. */
function latencySummary(label: string, samples: readonly Exchange[], maxLateMs: number, ok: (e: Exchange) => boolean): LatencyFigures {
  const count = samples.length;
  const bad = samples.filter((e) => !ok(e));
  check(bad.length === 0, `${label}: ${bad.length} of ${count} answers were wrong: ${describe(bad[0])}`);
  const latencies = samples.map((e) => e.latencyMs);
  const figures = {
    p50: percentile(latencies, 0.5),
    p90: percentile(latencies, 0.9),
    p99: percentile(latencies, 0.99),
    max: Math.max(...latencies),
    count,
    maxLateMs,
  };
  say(
    `  ${label.padEnd(34)} n=${count} p50 ${ms(figures.p50)} p90 ${ms(figures.p90)} p99 ${ms(figures.p99)} ` +
      `max ${ms(figures.max)} ms (sender at most ${ms(maxLateMs)} ms late)`,
  );
  return figures;
}

/**
 * The same paced load through two gateways, in halves alternated A B B A, so that drift on the
 * machine (another process, a GC-heavy phase) touches both alike: each gets LATENCY_SECONDS in all.
 */
async function pacedLatencyPair(
  a: { label: string; send: (i: number) => Promise<Exchange> },
  b: { label: string; send: (i: number) => Promise<Exchange> },
  ok: (e: Exchange) => boolean,
): Promise<[LatencyFigures, LatencyFigures]> {
  await pacedWarmUp(a.label, a.send, ok);
  await pacedWarmUp(b.label, b.send, ok);
  const half = Math.max(1, Math.round((RATE * LATENCY_SECONDS) / 2));
  const samples = { a: [] as Exchange[], b: [] as Exchange[] };
  const maxLate = { a: 0, b: 0 };
  for (const [which, offset] of [['a', 0], ['b', 0], ['b', half], ['a', half]] as const) {
    const { send } = which === 'a' ? a : b;
    const result = await paced(RATE, half, (i) => send(offset + i));
    samples[which].push(...result.samples);
    maxLate[which] = Math.max(maxLate[which], result.maxLateMs);
  }
  return [latencySummary(a.label, samples.a, maxLate.a, ok), latencySummary(b.label, samples.b, maxLate.b, ok)];
}

function describe(exchange: Exchange | undefined): string {
  if (!exchange) return '';
  return exchange.error ? `no answer (${exchange.error})` : `${exchange.status} ${exchange.body.slice(0, 300)}`;
}

function gatewaySender(gateway: Service, agent: http.Agent, prefix: string): (i: number) => Promise<Exchange> {
  return (i) =>
    post(agent, `${gateway.url}/rooms`, auth(CLIENTS['bench-a']), JSON.stringify({ roomId: `${prefix}-${i}`, roomName: 'bench' }));
}

/** A signed CreateRoom straight to the fake, built the way ZimClient builds it. */
function directSender(fake: FakeZimProcess, agent: http.Agent, prefix: string): (i: number) => Promise<Exchange> {
  return (i) => {
    const appId = String(APP_ID);
    const nonce = randomBytes(8).toString('hex');
    const timestamp = String(Math.floor(Date.now() / 1000));
    const query = new URLSearchParams({
      Action: 'CreateRoom',
      AppId: appId,
      SignatureNonce: nonce,
      Timestamp: timestamp,
      SignatureVersion: '2.0',
      Signature: ZegoSigner.signature(appId, nonce, SECRET, timestamp),
    });
    const body = JSON.stringify({ FromUserId: OPERATOR, RoomId: `${prefix}-${i}`, RoomName: 'bench' });
    return post(agent, `${fake.url}/?${query.toString()}`, {}, body);
  };
}

const created = (e: Exchange): boolean => e.status === 201;
const vendorSuccess = (e: Exchange): boolean => {
  if (e.status !== 200) return false;
  try {
    return (JSON.parse(e.body) as { Code?: unknown }).Code === 0;
  } catch {
    return false;
  }
};

async function latencyFigures(fake: FakeZimProcess): Promise<void> {
  say(
    `\n[2/5] latency at ${RATE}/s for ${LATENCY_SECONDS} s each, open loop, unique roomIds ` +
      `(after ${WARMUP_SECONDS} s of warm-up at the same rate)`,
  );
  say(`  (${load()})`);
  const direct = await pacedLatency('direct to the fake (baseline)', directSender(fake, keepAliveAgent(), `lat-d-${RUN}`), vendorSuccess);

  const gateway = await startGateway('latency-gateway', fake.url);
  const viaGateway = await pacedLatency('through the gateway, no Redis', gatewaySender(gateway, keepAliveAgent(), `lat-g-${RUN}`), created);
  say(`    ${await limiterWait(gateway)}`);
  await gateway.stop();
  pushLatencyRows('', viaGateway, direct);
  pushStageRow(viaGateway, direct, stageMedians(path.join(LOG_DIR, 'latency-gateway.log'), `lat-g-${RUN}-`));

  if (WITH_REDIS) {
    const redis = await startPrivateRedis();
    try {
      const redisEnv = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `bench-${RUN}` };
      const redisGateway = await startGateway('latency-gateway-redis', fake.url, redisEnv);
      // The same gateway with the first-come-first-served limiter it had before the fair scheduler.
      const fcfsGateway = await startGateway(
        'latency-fcfs-redis',
        fake.url,
        { ...redisEnv, REDIS_KEY_PREFIX: `bench-${RUN}-fcfs` },
        FCFS_SCRIPT,
      );
      const [viaRedis, viaFcfs] = await pacedLatencyPair(
        { label: 'through the gateway, with Redis', send: gatewaySender(redisGateway, keepAliveAgent(), `lat-r-${RUN}`) },
        { label: 'through the FCFS baseline, Redis', send: gatewaySender(fcfsGateway, keepAliveAgent(), `lat-f-${RUN}`) },
        created,
      );
      say(`    as built: ${await limiterWait(redisGateway)}`);
      say(`    FCFS:     ${await limiterWait(fcfsGateway)}`);
      await Promise.all([redisGateway.stop(), fcfsGateway.stop()]);
      pushLatencyRows(', Redis', viaRedis, direct);
      pushSchedulerRows(viaRedis, viaFcfs);
    } finally {
      await stopAllRedis();
    }
  } else {
    say('  (no redis-server on the PATH, or BENCH_REDIS=0: the Redis variant is skipped)');
  }
}

/** How much of that latency was the wait for an outbound slot (warm-up included), from /metrics. */
async function limiterWait(gateway: Service): Promise<string> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  if (!text.includes('zim_gateway_outbound_limiter_wait_seconds_count')) return 'outbound limiter wait: not in /metrics';
  const sum = metricValue(text, 'zim_gateway_outbound_limiter_wait_seconds_sum');
  const count = metricValue(text, 'zim_gateway_outbound_limiter_wait_seconds_count');
  const within10 = /^zim_gateway_outbound_limiter_wait_seconds_bucket\{[^}]*le="0\.01"[^}]*\} ([0-9.e+-]+)/m.exec(text);
  const over10 = within10 ? String(count - Number(within10[1])) : '?';
  return `outbound limiter wait: mean ${ms((sum / count) * 1000)} ms over ${count} calls, ${over10} waited over 10 ms`;
}

function pushLatencyRows(variant: string, gateway: LatencyFigures, direct: LatencyFigures): void {
  for (const [name, key] of [
    ['p50', 'p50'],
    ['p99', 'p99'],
  ] as const) {
    rows.push({
      figure: `POST /rooms ${name} at ${RATE}/s${variant} (ms)`,
      gateway: ms(gateway[key]),
      baseline: ms(direct[key]),
      ratio: ratio(gateway[key], direct[key]),
      note: `adds ${ms(gateway[key] - direct[key])} ms; baseline = signed CreateRoom straight to the fake`,
    });
  }
}

/**
 * Where the added time goes: the gateway's own time (arrival to answer, from its request log) by
 * stage, and the rest of the client's, which is the extra HTTP exchange on loopback itself.
 */
function pushStageRow(gateway: LatencyFigures, direct: LatencyFigures, stages: StageMedians): void {
  const byStage = stages.stages.map(([stage, value]) => `${stage} ${ms(value)}`).join(', ');
  say(`    inside the gateway (p50 of each, n=${stages.count}): ${ms(stages.gatewayMs)} ms in all: ${byStage}`);
  rows.push({
    figure: `POST /rooms p50 at ${RATE}/s, inside the gateway (ms)`,
    gateway: ms(stages.gatewayMs),
    baseline: ms(direct.p50),
    ratio: ratio(stages.gatewayMs, direct.p50),
    note: `${byStage}; the client's other ${ms(gateway.p50 - stages.gatewayMs)} ms: the extra loopback HTTP exchange`,
  });
}

/** What the outbound scheduler as built adds at light load over the first-come-first-served one. */
function pushSchedulerRows(asBuilt: LatencyFigures, fcfs: LatencyFigures): void {
  for (const key of ['p50', 'p99'] as const) {
    const added = asBuilt[key] - fcfs[key];
    rows.push({
      figure: `POST /rooms ${key} at ${RATE}/s vs FCFS (ms)`,
      gateway: ms(asBuilt[key]),
      baseline: ms(fcfs[key]),
      ratio: ratio(asBuilt[key], fcfs[key]),
      note:
        `with Redis, new scheduler vs FCFS: ${added >= 0 ? 'adds' : 'saves'} ${ms(Math.abs(added))} ms` +
        (key === 'p50' ? `; ${added <= 1 ? 'within' : 'OVER'} the 1 ms allowed at p50` : ''),
    });
  }
}

// ------------------------------------------------------------------ 3. refusal capacity

interface CannonFigures {
  perSecond: number;
  statuses: Record<string, number>;
  p50: number;
  p99: number;
}

/** `body`: the same bytes every time, or a function of the request's number (a body never sent before). */
async function cannon(
  label: string,
  url: string,
  headers: Record<string, string>,
  body: string | ((n: number) => string),
): Promise<CannonFigures> {
  let sent = 0;
  const options = {
    url: `${url}/rooms`,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json', ...headers },
    ...(typeof body === 'string' ? { body } : { requests: [{ setupRequest: (request: object) => ({ ...request, body: body(++sent) }) }] }),
    connections: CONNECTIONS,
    pipelining: 1,
    timeout: 10,
  };
  if (WARMUP_SECONDS > 0) await autocannon({ ...options, duration: WARMUP_SECONDS });
  const result = await autocannon({ ...options, duration: REFUSAL_SECONDS });
  const statuses: Record<string, number> = {};
  let answered = 0;
  for (const [code, { count = 0 }] of Object.entries(result.statusCodeStats ?? {})) {
    statuses[code] = count;
    answered += count;
  }
  check(result.errors === 0 && result.timeouts === 0, `${label}: ${result.errors} connection errors, ${result.timeouts} timeouts`);
  const figures = { perSecond: answered / result.duration, statuses, p50: result.latency.p50, p99: result.latency.p99 };
  say(
    `  ${label.padEnd(34)} ${figures.perSecond.toFixed(0).padStart(6)} answers/s  p50 ${figures.p50} ms  p99 ${figures.p99} ms  ` +
      `statuses ${JSON.stringify(statuses)}`,
  );
  return figures;
}

/** At least 99% of the answers carry `status`, and nothing else but the `tolerated` ones. */
function expectStatus(label: string, figures: CannonFigures, status: string, tolerated: string[] = []): void {
  const total = Object.values(figures.statuses).reduce((a, b) => a + b, 0);
  const expected = figures.statuses[status] ?? 0;
  const others = Object.keys(figures.statuses).filter((code) => code !== status && !tolerated.includes(code));
  check(total > 0 && expected / total >= 0.99 && others.length === 0, `${label}: expected ${status}, got ${JSON.stringify(figures.statuses)}`);
}

async function refusalFigures(fake: FakeZimProcess): Promise<void> {
  say(
    `\n[3/5] refusal capacity: autocannon, ${CONNECTIONS} connections, ${REFUSAL_SECONDS} s each ` +
      `(after ${WARMUP_SECONDS} s of warm-up), no Redis`,
  );
  say(`  (${load()})`);
  const validBody = JSON.stringify({ roomId: `refuse-${RUN}`, roomName: 'bench' });
  const badBody = JSON.stringify({ roomId: '', roomName: 5 });

  const bare = await startBare('refusal-bare');
  const bareBefore = await cannon('bare Nest 401 (baseline, before)', bare.url, auth(BAD_KEY), validBody);
  expectStatus('bare Nest 401', bareBefore, '401');

  // What a refusal costs, at the rate the replica can answer: the quota's refusals answered at once,
  // not held (CLIENT_QUOTA_REFUSAL_DELAY_MS, which caps a looping caller's rate; bench:flood shows both).
  const gateway = await startGateway('refusal-gateway', fake.url, { CLIENT_QUOTA_REFUSAL_DELAY_MS: '0' });
  const unauthorized = await cannon('gateway 401 bad key', gateway.url, auth(BAD_KEY), validBody);
  expectStatus('gateway 401', unauthorized, '401');
  // A caller retrying the same bad body is answered from the refusal remembered; one sending a new
  // bad body each time pays for validation each time.
  const badRequest = await cannon('gateway 400 bad body (repeated)', gateway.url, auth(CLIENTS['bench-a']), badBody);
  expectStatus('gateway 400', badRequest, '400');
  const variedBadBody = (n: number): string => JSON.stringify({ roomId: '', roomName: n });
  const badRequestVaried = await cannon('gateway 400 bad body (each new)', gateway.url, auth(CLIENTS['bench-a']), variedBadBody);
  expectStatus('gateway 400 (each new)', badRequestVaried, '400');
  // About one request a second passes the 1/s quota: the first creates the room, later ones 409.
  const overQuota = await cannon('gateway 429 over quota (1/s, at once)', gateway.url, auth(CLIENTS['bench-quota']), validBody);
  expectStatus('gateway 429', overQuota, '429', ['201', '409']);
  await gateway.stop();

  const bareAfter = await cannon('bare Nest 401 (baseline, after)', bare.url, auth(BAD_KEY), validBody);
  expectStatus('bare Nest 401 (after)', bareAfter, '401');
  await bare.stop();
  // The same bare route on @nestjs/platform-fastify: what the other adapter alone would change.
  const bareFastify = await startBare('refusal-bare-fastify', 'fastify');
  const onFastify = await cannon('bare Nest 401 on fastify', bareFastify.url, auth(BAD_KEY), validBody);
  expectStatus('bare Nest 401 on fastify', onFastify, '401');
  await bareFastify.stop();

  const baseline = (bareBefore.perSecond + bareAfter.perSecond) / 2;
  const spread = `baseline ${bareBefore.perSecond.toFixed(0)} before, ${bareAfter.perSecond.toFixed(0)} after`;
  for (const [figure, f] of [
    ['refusals/s, 401 bad key', unauthorized],
    ['refusals/s, 400 bad body (repeated)', badRequest],
    ['refusals/s, 400 bad body (each new)', badRequestVaried],
    ['refusals/s, 429 over quota', overQuota],
  ] as const) {
    rows.push({
      figure,
      gateway: f.perSecond.toFixed(0),
      baseline: baseline.toFixed(0),
      ratio: ratio(f.perSecond, baseline),
      note: `p99 ${f.p99} ms vs ${Math.max(bareBefore.p99, bareAfter.p99)} ms; ${spread}`,
    });
  }
  rows.push({
    figure: 'refusals/s, bare 401: fastify vs express',
    gateway: onFastify.perSecond.toFixed(0),
    baseline: baseline.toFixed(0),
    ratio: ratio(onFastify.perSecond, baseline),
    note: 'the same bare Nest route on @nestjs/platform-fastify against platform-express',
  });
}

// ------------------------------------------------------------------ 4. memory

/** Request i of the mix: a room (201), a bad body (400), a bad key (401), the 1/s client (429). */
function mixRequest(gateway: Service, agent: http.Agent, i: number): Promise<Exchange> {
  const url = `${gateway.url}/rooms`;
  switch (i % 4) {
    case 0:
      return post(agent, url, auth(CLIENTS['bench-a']), JSON.stringify({ roomId: `mix-${RUN}-${i}`, roomName: 'bench' }));
    case 1:
      return post(agent, url, auth(CLIENTS['bench-a']), JSON.stringify({ roomId: '', roomName: 5 }));
    case 2:
      return post(agent, url, auth(BAD_KEY), JSON.stringify({ roomId: `mix-${RUN}-${i}` }));
    default:
      // Over its 1/s quota most of the time; the admitted ones carry a bad body (400).
      return post(agent, url, auth(CLIENTS['bench-quota']), JSON.stringify({ roomId: '', roomName: 5 }));
  }
}

async function gatewayRss(gateway: Service): Promise<number> {
  const response = await fetch(`${gateway.url}/metrics`);
  return metricValue(await response.text(), 'process_resident_memory_bytes');
}

async function memoryFigures(fake: FakeZimProcess): Promise<void> {
  say(
    `\n[4/5] memory: fresh processes, ${MEMORY_SECONDS} s at ${MIX_RATE}/s; gateway gets a mix of ` +
      `201/400/401/429, the bare app its 401 at the same rate, side by side`,
  );
  say(`  (${load()})`);
  const gateway = await startGateway('memory-gateway', fake.url);
  const bare = await startBare('memory-bare');
  const gatewayAtReady = await gatewayRss(gateway);
  const bareAtReady = rssBytes(bare.pid);
  const count = Math.max(4, Math.round(MIX_RATE * MEMORY_SECONDS));
  const gatewayAgent = keepAliveAgent();
  const bareAgent = keepAliveAgent();
  const started = performance.now();
  const [mix, plain] = await Promise.all([
    paced(MIX_RATE, count, (i) => mixRequest(gateway, gatewayAgent, i)),
    paced(MIX_RATE, count, () => post(bareAgent, `${bare.url}/rooms`, auth(BAD_KEY), '{"roomId":"x"}')),
  ]);
  // Read at the same moment after the load, a full MEMORY_SECONDS after it began.
  const rest = MEMORY_SECONDS * 1000 - (performance.now() - started);
  if (rest > 0) await sleep(rest);
  const gatewayAfter = await gatewayRss(gateway);
  const bareAfter = rssBytes(bare.pid);
  const gatewayProcRss = rssBytes(gateway.pid);
  await Promise.all([gateway.stop(), bare.stop()]);

  const statuses = countBy(mix.samples, (e) => (e.error ? 'no answer' : String(e.status)));
  say(`  gateway statuses ${JSON.stringify(statuses)}; bare ${JSON.stringify(countBy(plain.samples, (e) => String(e.status)))}`);
  check(
    ['201', '400', '401', '429'].every((s) => (statuses[s] ?? 0) > 0) &&
      Object.keys(statuses).every((s) => ['201', '400', '401', '429'].includes(s)),
    `memory mix: expected only 201, 400, 401 and 429, got ${JSON.stringify(statuses)}`,
  );
  check(plain.samples.every((e) => e.status === 401), 'memory baseline: the bare app answered something other than 401');
  say(
    `  gateway RSS ${mib(gatewayAtReady)} MiB at ready → ${mib(gatewayAfter)} MiB after (/metrics; /proc says ${mib(gatewayProcRss)})`,
  );
  say(`  bare    RSS ${mib(bareAtReady)} MiB at ready → ${mib(bareAfter)} MiB after (/proc)`);
  rows.push({
    figure: `RSS after ${MEMORY_SECONDS} s mixed load (MiB)`,
    gateway: mib(gatewayAfter),
    baseline: mib(bareAfter),
    ratio: ratio(gatewayAfter, bareAfter),
    note: `at ready ${mib(gatewayAtReady)} vs ${mib(bareAtReady)}; ${MIX_RATE}/s, ${count} requests`,
  });
}

// ------------------------------------------------------------------ 5. tracing

/**
 * What tracing costs a request: the same paced load through a gateway with tracing on (spans
 * exported over OTLP/HTTP protobuf to a stand-in receiver in this process, at the SDK's default
 * batch delay) and one with it off, both as `npm start` runs them, alternated A B B A.
 */
async function tracingFigures(fake: FakeZimProcess): Promise<void> {
  say(
    `\n[5/5] tracing: latency at ${RATE}/s for ${LATENCY_SECONDS} s each, tracing on (exporting to a stand-in OTLP ` +
      `receiver in this process) against off, both as npm start runs them${WITH_REDIS ? ', with Redis' : ', no Redis'}`,
  );
  say(`  (${load()})`);
  const collector = new OtlpReceiver();
  await collector.start();
  const redis = WITH_REDIS ? await startPrivateRedis() : undefined;
  try {
    const shared: Record<string, string> = redis ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `bench-${RUN}-tracing` } : {};
    const off = await startGateway('tracing-off', fake.url, shared, GATEWAY_SCRIPT, NPM_START_OPTIONS);
    const on = await startGateway(
      'tracing-on',
      fake.url,
      { ...shared, OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: 'bench-gateway' },
      GATEWAY_SCRIPT,
      NPM_START_OPTIONS,
    );
    const [viaOff, viaOn] = await pacedLatencyPair(
      { label: 'tracing off (npm start)', send: gatewaySender(off, keepAliveAgent(), `trc-off-${RUN}`) },
      { label: 'tracing on, exporting', send: gatewaySender(on, keepAliveAgent(), `trc-on-${RUN}`) },
      created,
    );
    // At SIGTERM the traced gateway sends the spans still queued.
    await Promise.all([off.stop(), on.stop()]);
    const spans = collector.spans();
    const traces = new Set(spans.map((span) => span.traceId)).size;
    check(spans.length > 0, 'tracing on: the stand-in OTLP receiver got no span');
    const perTrace = traces === 0 ? 0 : spans.length / traces;
    say(`    received ${spans.length} spans of ${traces} traces in ${collector.exports().length} exports (${perTrace.toFixed(1)} spans a request)`);
    for (const key of ['p50', 'p99'] as const) {
      rows.push({
        figure: `POST /rooms ${key} at ${RATE}/s, tracing on vs off (ms)`,
        gateway: ms(viaOn[key]),
        baseline: ms(viaOff[key]),
        ratio: ratio(viaOn[key], viaOff[key]),
        note: `tracing ${viaOn[key] >= viaOff[key] ? 'adds' : 'saves'} ${ms(Math.abs(viaOn[key] - viaOff[key]))} ms; ${perTrace.toFixed(1)} spans a request${WITH_REDIS ? ', Redis' : ''}`,
      });
    }
  } finally {
    await collector.stop();
    if (redis) await stopAllRedis();
  }
}

// ------------------------------------------------------------------ main

function printTable(): void {
  const widths = [40, 10, 10, 8];
  const line = (cells: string[]): string =>
    cells.map((cell, i) => (i < widths.length ? cell.padEnd(widths[i]!) : cell)).join('  ');
  say('\n' + line(['figure', 'gateway', 'baseline', 'ratio', 'notes']));
  for (const row of rows) say(line([row.figure, row.gateway, row.baseline, row.ratio, row.note]));
}

async function main(): Promise<void> {
  const began = performance.now();
  const cpus = os.cpus();
  say(
    `machine: ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
      `node ${process.version}, ${os.platform()} ${os.release()}${SMOKE ? ' (BENCH_SMOKE: shortened runs)' : ''}`,
  );
  say(`logs of the started services: ${LOG_DIR}`);
  const fake = await startFakeZimProcess(APP_ID, SECRET, FAKE_SCRIPT);
  try {
    await startupFigures(fake.url);
    await latencyFigures(fake);
    await refusalFigures(fake);
    await memoryFigures(fake);
    await tracingFigures(fake);
  } finally {
    await stopAllServices();
    await stopAllGateways(); // the fake (started through gateway-process.ts)
  }
  printTable();
  say(`\ntook ${((performance.now() - began) / 1000).toFixed(0)} s; at the end: ${load()}`);
  if (failures.length > 0) {
    say(`\nFAILED (${failures.length}); service logs kept in ${LOG_DIR}:`);
    for (const failure of failures) say(`  - ${failure}`);
    process.exit(1);
  }
  rmSync(LOG_DIR, { recursive: true, force: true });
  process.exit(0); // keep-alive agents would otherwise hold the loop open a while
}

main().catch(async (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.stderr.write(`service logs kept in ${LOG_DIR}\n`);
  await stopAllServices();
  await stopAllGateways();
  await stopAllRedis();
  process.exit(1);
});
