/**
 * `npm run bench:flood`: what a runaway client costs its neighbours. Three gateway replicas share
 * one Redis, the fake ZIM vendor runs in its own process. Two light teams send steadily over the
 * replicas (web 4/s, ops 2/s, open loop) beside a third client sending exactly its quota (10/s);
 * then that client's job floods replica 0 without backoff
 * (100 keep-alive connections, each asking again at once, its quota 10/s answering 429), from a
 * process of its own (test/support/flood-load.ts), while the light teams keep sending.
 *
 * Prints, for the light teams: p50 and p99 of their 201s before the flood and during it, and the
 * ratio (the aim: p99 during at most twice p99 before); for the flood: its answers per second by
 * status; and the CPU the flooded replica spent per refusal (its utime + stime from /proc, read
 * around the flood), beside the same figure for a fourth replica that answers its refusals at
 * once (CLIENT_QUOTA_REFUSAL_DELAY_MS=0) and for the bare Nest route (bench/bare-nest-app.ts),
 * each flooded alike by the same load process in the same run, and their ratio.
 *
 * Knobs (defaults in brackets): BENCH_SMOKE=1 shortens every phase; BENCH_BEFORE_SECONDS [15],
 * BENCH_DURING_SECONDS [15], BENCH_WARMUP_SECONDS [2] (the bare app's warm-up flood, not
 * measured), BENCH_FLOOD_CONNECTIONS [100]. Exits 1 when anything went wrong: a service failed, a
 * request got no answer or an answer the scenario does not expect, or the runaway got more rooms
 * than its quota allows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { maxCallsInAnyWindow } from '../test/support/call-windows.js';
import { FLEET_APP_ID, limiterModeLines, percentile, startFakeZimProcess, startReplicas, waitForLimiterMode, warmUp } from '../test/support/fleet.js';
import {
  answersPerSecond,
  duringFlood,
  floodFor,
  floodRoomsAtVendor,
  floodSeconds,
  formatFloodReport,
  mostAdmittedByQuota,
  stopAllFloods,
  type FloodOptions,
  type FloodReport,
} from '../test/support/flood-load.js';
import { stopAllGateways, type GatewayProcess } from '../test/support/gateway-process.js';
import { metricSum, scrapeMetrics, type MetricSample } from '../test/support/prometheus-text.js';
import { startPrivateRedis, stopAllRedis } from '../test/support/redis-server.js';
import { openLoop, runTeamLoad, type Team, type TeamAnswer } from '../test/support/team-load.js';
import { knob, type Service, SMOKE, startService, stopAllServices } from './bench-support.js';
import { processCpuMs } from './process-cpu-time.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECRET = 'bench-secret-not-a-real-one-5d2f';
const CLIENTS = { web: 'bench-key-web-0001', ops: 'bench-key-ops-0002', runaway: 'bench-key-runaway-0003' } as const;
const RUNAWAY_QUOTA = 10;
const LIGHT_TEAMS: readonly Team[] = [
  { name: 'web', key: CLIENTS.web, traffic: openLoop(4) },
  { name: 'ops', key: CLIENTS.ops, traffic: openLoop(2) },
];
/**
 * Before the flood the runaway sends exactly its quota: the light teams then share the vendor
 * budget with the same admitted calls in both phases, and the ratio shows what the refusals cost.
 */
const POLITE_RUNAWAY: Team = { name: 'runaway', key: CLIENTS.runaway, traffic: openLoop(RUNAWAY_QUOTA) };
const FLOODED = 0;
const RUNAWAY_ROOMS = 'runaway-flood';

// ------------------------------------------------------------------ knobs

const BEFORE_SECONDS = knob('BENCH_BEFORE_SECONDS', 15, 3);
const DURING_SECONDS = knob('BENCH_DURING_SECONDS', 15, 3);
const WARMUP_SECONDS = knob('BENCH_WARMUP_SECONDS', 2, 1);
const CONNECTIONS = Math.max(1, Math.round(knob('BENCH_FLOOD_CONNECTIONS', 100, 100)));

// ------------------------------------------------------------------ run state

const LOG_DIR = mkdtempSync(path.join(os.tmpdir(), 'zim-gateway-bench-flood-'));
/** Everything that went wrong; any entry makes the run exit 1. */
const failures: string[] = [];

const say = (text: string): void => void process.stdout.write(`${text}\n`);
const load = (): string => `load average ${os.loadavg()[0]!.toFixed(2)}`;
const ms = (value: number): string => value.toFixed(0);
const ratio = (a: number, b: number): string => `x${(a / b).toFixed(2)}`;

function check(ok: boolean, what: string): void {
  if (!ok) {
    failures.push(what);
    say(`  !! ${what}`);
  }
}

// ------------------------------------------------------------------ the light teams

interface LightFigures {
  sent: number;
  created: number;
  p50: number;
  p99: number;
  /** Their mean wait for an outbound slot (ms), every replica's /metrics: the shared vendor budget's part of the latency. */
  slotWaitMs: number;
  /** The same through the flooded replica alone, and through the others. */
  flooded: { p50: number; p99: number; n: number };
  others: { p50: number; p99: number; n: number };
}

function lightFigures(label: string, answers: readonly TeamAnswer[], slotWaitMs: number): LightFigures {
  const created = answers.filter((a) => a.status === 201);
  const other = answers.filter((a) => a.status !== 201);
  check(other.length === 0, `${label}: ${other.length} of ${answers.length} light requests not created: ${describe(other[0])}`);
  const latencies = (of: readonly TeamAnswer[]): number[] => of.map((a) => a.latencyMs);
  const summary = (of: readonly TeamAnswer[]) => ({
    p50: percentile(latencies(of), 0.5),
    p99: percentile(latencies(of), 0.99),
    n: of.length,
  });
  const all = summary(created);
  return {
    sent: answers.length,
    created: created.length,
    p50: all.p50,
    p99: all.p99,
    slotWaitMs,
    flooded: summary(created.filter((a) => a.gateway === FLOODED)),
    others: summary(created.filter((a) => a.gateway !== FLOODED)),
  };
}

function describe(answer: TeamAnswer | undefined): string {
  if (!answer) return '';
  return answer.error ? `no answer (${answer.error})` : `${answer.status} ${answer.body ?? ''}`.slice(0, 300);
}

function lightLoad(gateways: readonly GatewayProcess[], seconds: number, runId: string) {
  return runTeamLoad({ gateways, teams: LIGHT_TEAMS, durationMs: seconds * 1000, requestTimeoutMs: 15_000, runId });
}

const SLOT_WAIT = 'zim_gateway_outbound_limiter_wait_seconds';

async function scrapeAll(gateways: readonly GatewayProcess[]): Promise<MetricSample[][]> {
  return Promise.all(gateways.map((g) => scrapeMetrics(g.url)));
}

/** The light teams' mean wait for an outbound slot between two scrapes of every replica (ms). */
function lightSlotWaitMs(before: readonly MetricSample[][], after: readonly MetricSample[][]): number {
  const total = (name: string, all: readonly MetricSample[][]): number =>
    all.reduce((sum, samples) => sum + LIGHT_TEAMS.reduce((s, team) => s + metricSum(samples, name, { client: team.name }), 0), 0);
  const seconds = total(`${SLOT_WAIT}_sum`, after) - total(`${SLOT_WAIT}_sum`, before);
  const count = total(`${SLOT_WAIT}_count`, after) - total(`${SLOT_WAIT}_count`, before);
  return (seconds / count) * 1000;
}

// ------------------------------------------------------------------ CPU per refusal

interface CpuPerRefusal {
  report: FloodReport;
  refusals: number;
  cpuMs: number;
  /** Wall time from just before the flood started to just after it ended (ms). */
  wallMs: number;
}

/** The CPU `pid` spent while `flooding` ran (a flood's start and stop included), per refusal with status `refusal`. */
async function cpuPerRefusal<T>(
  pid: number,
  refusal: string,
  flooding: () => Promise<{ result: T; flood: FloodReport }>,
): Promise<{ result: T; cpu: CpuPerRefusal }> {
  const cpuBefore = processCpuMs(pid);
  const began = performance.now();
  const { result, flood } = await flooding();
  const wallMs = performance.now() - began;
  const cpuMs = processCpuMs(pid) - cpuBefore;
  check(flood.errors === 0 && flood.timeouts === 0, `flood of process ${pid}: ${flood.errors} connection errors, ${flood.timeouts} timeouts`);
  return { result, cpu: { report: flood, refusals: flood.statuses[refusal] ?? 0, cpuMs, wallMs } };
}

function floodOf(targetUrl: string, roomPrefix: string): FloodOptions {
  return { targetUrl, apiKey: CLIENTS.runaway, connections: CONNECTIONS, roomPrefix };
}

// ------------------------------------------------------------------ the scenario

interface Figures {
  before: LightFigures;
  during: LightFigures;
  /** The flooded replica, its refusals held CLIENT_QUOTA_REFUSAL_DELAY_MS (the default). */
  gateway: CpuPerRefusal;
  /** A replica like it with refusals answered at once (CLIENT_QUOTA_REFUSAL_DELAY_MS=0), flooded alone. */
  atOnce: CpuPerRefusal;
  bare: CpuPerRefusal;
  /** The flooded replica's CPU per second with the light teams alone: its share of them, inside the flood's CPU too. */
  replicaCpuMsPerSecondBefore: number;
  runawayRooms: number;
  vendorMaxInAnyWindow: number;
}

/** Starts the services, runs the four phases, stops everything (also when a phase failed). */
async function runScenario(): Promise<Figures> {
  const redis = await startPrivateRedis();
  const fake = await startFakeZimProcess(FLEET_APP_ID, SECRET, path.join(ROOT, 'dist-bench/test/fake-zim/main.js'));
  try {
    const replicaOptions = {
      secret: SECRET,
      clients: CLIENTS,
      fakeUrl: fake.url,
      script: path.join(ROOT, 'dist/main.js'),
      env: {
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: `bench-flood-${Date.now()}`,
        // The light teams and the warm-up out of the way; the runaway at the gateway's default quota.
        CLIENT_RATE_LIMIT: '1000',
        CLIENT_RATE_LIMITS: `runaway:${RUNAWAY_QUOTA}`,
      },
    };
    const gateways = await startReplicas({ ...replicaOptions, replicas: 3 });
    await Promise.all(gateways.map((g) => waitForLimiterMode(g, 'shared')));
    await warmUp(gateways, CLIENTS.web, `warm${Date.now().toString(36)}`);
    const bareApp: Service = await startService({
      name: 'flood-bare',
      script: path.join(ROOT, 'dist-bench/bench/bare-nest-app.js'),
      env: {},
      probe: { method: 'POST', path: '/rooms' },
      logDir: LOG_DIR,
    });
    const floodedPid = gateways[FLOODED]!.pid;

    say(`\n[1/4] light teams beside the runaway at its quota (${RUNAWAY_QUOTA}/s), ${BEFORE_SECONDS} s (${load()})`);
    const quietMetrics = await scrapeAll(gateways);
    const cpuBefore = processCpuMs(floodedPid);
    const quietStarted = performance.now();
    const quietLoad = await runTeamLoad({
      gateways,
      teams: [...LIGHT_TEAMS, POLITE_RUNAWAY],
      durationMs: BEFORE_SECONDS * 1000,
      requestTimeoutMs: 15_000,
      runId: 'before',
    });
    const quiet = { answers: quietLoad.answers.filter((a) => a.team !== POLITE_RUNAWAY.name) };
    const replicaCpuMsPerSecondBefore = (processCpuMs(floodedPid) - cpuBefore) / ((performance.now() - quietStarted) / 1000);
    const floodMetrics = await scrapeAll(gateways);
    const before = lightFigures('before the flood', quiet.answers, lightSlotWaitMs(quietMetrics, floodMetrics));

    say(`[2/4] light teams beside the flood of replica ${FLOODED}, ${DURING_SECONDS} s (${load()})`);
    const mark = gateways[FLOODED]!.logMark();
    // The flood answering before the light teams start and stopped once they ended: the CPU read around it.
    const flooded = await cpuPerRefusal(floodedPid, '429', () =>
      duringFlood(floodOf(gateways[FLOODED]!.url, RUNAWAY_ROOMS), () => lightLoad(gateways, DURING_SECONDS, 'during')),
    );
    const gateway = flooded.cpu;
    say(`  gateway: ${formatFloodReport(gateway.report)}`);
    // A replica whose event loop is saturated reads Redis as slow: whether it left the shared budget, and when.
    const modes = limiterModeLines(gateways[FLOODED]!, mark).map((l) => l.message);
    say(`  replica ${FLOODED}'s limiter during the flood: ${modes.join('; ') || 'no change of mode'}`);
    const during = lightFigures('during the flood', flooded.result.answers, lightSlotWaitMs(floodMetrics, await scrapeAll(gateways)));
    const unexpected = Object.keys(gateway.report.statuses).filter((s) => s !== '201' && s !== '429');
    check(unexpected.length === 0, `the runaway got answers other than 201 and 429: ${JSON.stringify(gateway.report.statuses)}`);

    say(`[3/4] a fourth replica answering refusals at once (CLIENT_QUOTA_REFUSAL_DELAY_MS=0), flooded alone, ${DURING_SECONDS} s (${load()})`);
    const [atOnceReplica] = await startReplicas({
      ...replicaOptions,
      replicas: 1,
      env: { ...replicaOptions.env, CLIENT_QUOTA_REFUSAL_DELAY_MS: '0' },
    });
    await waitForLimiterMode(atOnceReplica!, 'shared');
    await floodFor({ ...floodOf(atOnceReplica!.url, 'at-once-warm'), durationMs: WARMUP_SECONDS * 1000 });
    const atOnceFlood = { ...floodOf(atOnceReplica!.url, 'at-once-flood'), durationMs: DURING_SECONDS * 1000 };
    const { cpu: atOnce } = await cpuPerRefusal(atOnceReplica!.pid, '429', async () => ({ result: undefined, flood: await floodFor(atOnceFlood) }));
    say(`  at once: ${formatFloodReport(atOnce.report)}`);

    say(`[4/4] the bare Nest app flooded alike: ${WARMUP_SECONDS} s of warm-up, then ${DURING_SECONDS} s (${load()})`);
    await floodFor({ ...floodOf(bareApp.url, 'bare-warm'), durationMs: WARMUP_SECONDS * 1000 });
    const bareFlood = { ...floodOf(bareApp.url, 'bare-flood'), durationMs: DURING_SECONDS * 1000 };
    const { cpu: bare } = await cpuPerRefusal(bareApp.pid, '401', async () => ({ result: undefined, flood: await floodFor(bareFlood) }));
    say(`  bare:    ${formatFloodReport(bare.report)}`);
    check(Object.keys(bare.report.statuses).every((s) => s === '401'), `the bare app answered other than 401: ${JSON.stringify(bare.report.statuses)}`);

    const calls = await fake.calls();
    const runawayRooms = floodRoomsAtVendor(calls, RUNAWAY_ROOMS);
    const bound = mostAdmittedByQuota(RUNAWAY_QUOTA, gateway.report);
    check(runawayRooms <= bound, `the runaway got ${runawayRooms} rooms, more than its quota allows (${bound})`);
    const vendorMaxInAnyWindow = maxCallsInAnyWindow(
      calls.map((c) => c.atHr),
      1000,
    );
    return { before, during, gateway, atOnce, bare, replicaCpuMsPerSecondBefore, runawayRooms, vendorMaxInAnyWindow };
  } finally {
    await stopAllFloods();
    await stopAllServices();
    await stopAllGateways(); // the replicas and the fake (started through gateway-process.ts)
    await stopAllRedis();
  }
}

// ------------------------------------------------------------------ output

function printFigures(f: Figures): void {
  const widths = [44, 12, 12, 14];
  const line = (cells: string[]): string => cells.map((cell, i) => (i < widths.length ? cell.padEnd(widths[i]!) : cell)).join('');
  const { before, during, gateway, bare } = f;

  say('\n' + line(['light teams (web 4/s + ops 2/s)', 'before', 'during', 'during/before', 'notes']));
  say(line(['  201 p50 (ms)', ms(before.p50), ms(during.p50), ratio(during.p50, before.p50), '']));
  say(line(['  201 p99 (ms)', ms(before.p99), ms(during.p99), ratio(during.p99, before.p99), `aim: at most x2 (${during.p99 <= 2 * before.p99 ? 'met' : 'not met'})`]));
  say(
    line([
      '  of which waiting for a slot, mean (ms)',
      before.slotWaitMs.toFixed(1),
      during.slotWaitMs.toFixed(1),
      ratio(during.slotWaitMs, before.slotWaitMs),
      'outbound limiter wait, from /metrics',
    ]),
  );
  say(line(['  created / sent', `${before.created}/${before.sent}`, `${during.created}/${during.sent}`, '', '']));
  for (const [label, key] of [
    [`  via replica ${FLOODED} (flooded), p50 / p99 (ms)`, 'flooded'],
    ['  via the other replicas, p50 / p99 (ms)', 'others'],
  ] as const) {
    const b = before[key];
    const d = during[key];
    say(line([label, `${ms(b.p50)} / ${ms(b.p99)}`, `${ms(d.p50)} / ${ms(d.p99)}`, ratio(d.p99, b.p99), `p99 ratio; n=${b.n} and ${d.n}`]));
  }

  const seconds = floodSeconds(gateway.report);
  say('\n' + line([`the flood (${CONNECTIONS} connections, replica ${FLOODED})`, 'answers/s', 'answers', '', 'notes']));
  for (const status of Object.keys(gateway.report.statuses).sort()) {
    const note = status === '201' ? `rooms at the vendor ${f.runawayRooms}, quota allows ${mostAdmittedByQuota(RUNAWAY_QUOTA, gateway.report)}` : '';
    say(line([`  ${status}`, answersPerSecond(gateway.report, status).toFixed(1), String(gateway.report.statuses[status]), '', note]));
  }
  say(line(['  over (s)', seconds.toFixed(1), '', '', `vendor: most calls in any 1000 ms window ${f.vendorMaxInAnyWindow} (fake's clock)`]));

  const perRefusal = (c: CpuPerRefusal): number => c.cpuMs / c.refusals;
  const perSecond = (c: CpuPerRefusal, status: string): number => answersPerSecond(c.report, status);
  const core = (c: CpuPerRefusal): string => `${((c.cpuMs / c.wallMs) * 100).toFixed(0)}%`;
  const withoutFloodMs = f.replicaCpuMsPerSecondBefore * (gateway.wallMs / 1000);
  const { atOnce } = f;
  const cpuWidths = [44, 12, 12, 12, 14];
  const cpuLine = (cells: string[]): string => cells.map((cell, i) => (i < cpuWidths.length ? cell.padEnd(cpuWidths[i]!) : cell)).join('');
  say('\n' + cpuLine(['CPU per refusal (utime + stime)', 'held', 'at once', 'bare Nest', 'at once/bare', 'notes']));
  say(
    cpuLine([
      '  CPU ms per refusal',
      perRefusal(gateway).toFixed(3),
      perRefusal(atOnce).toFixed(3),
      perRefusal(bare).toFixed(3),
      ratio(perRefusal(atOnce), perRefusal(bare)),
      `gateway 429 over quota, bare 401; held: the flooded replica, whose ${ms(gateway.cpuMs)} ms include ~${ms(withoutFloodMs)} at its rate without the flood (${ms(f.replicaCpuMsPerSecondBefore)} ms/s: its light-team share, timers)`,
    ]),
  );
  say(
    cpuLine([
      '  refusals/s',
      perSecond(gateway, '429').toFixed(0),
      perSecond(atOnce, '429').toFixed(0),
      perSecond(bare, '401').toFixed(0),
      ratio(perSecond(atOnce, '429'), perSecond(bare, '401')),
      `held: at most ${CONNECTIONS} connections / CLIENT_QUOTA_REFUSAL_DELAY_MS`,
    ]),
  );
  say(cpuLine(['  CPU used, of one core', core(gateway), core(atOnce), core(bare), '', 'over the flood, start and stop of the load process included']));
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const began = performance.now();
  const cpus = os.cpus();
  say(
    `machine: ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
      `node ${process.version}, ${os.platform()} ${os.release()}${SMOKE ? ' (BENCH_SMOKE: shortened phases)' : ''}`,
  );
  say(
    `scenario: 3 replicas, one Redis; web 4/s + ops 2/s over the replicas; ` +
      `the flood: ${CONNECTIONS} connections on replica ${FLOODED}, quota ${RUNAWAY_QUOTA}/s (${load()})`,
  );
  printFigures(await runScenario());
  say(`\ntook ${((performance.now() - began) / 1000).toFixed(0)} s; at the end: ${load()}`);
  if (failures.length > 0) {
    say(`\nFAILED (${failures.length}); bare app log kept in ${LOG_DIR}:`);
    for (const failure of failures) say(`  - ${failure}`);
    process.exit(1);
  }
  rmSync(LOG_DIR, { recursive: true, force: true });
  process.exit(0); // keep-alive connections would otherwise hold the loop open a while
}

main().catch(async (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.stderr.write(`bare app log kept in ${LOG_DIR}\n`);
  await stopAllFloods();
  await stopAllServices();
  await stopAllGateways();
  await stopAllRedis();
  process.exit(1);
});
