/**
 * `npm run bench:fairness`: three client teams at once against three gateway replicas sharing one
 * Redis, the fake ZIM vendor in its own process. `batch` floods with 40 callers, each with one
 * request in flight; `web` sends 4 requests per second and `ops` 2, open loop; all interactive,
 * equal weights. Run twice on the same traffic: once with the gateway as built (dist/main.js),
 * once with the first-come-first-served limiter it had before the fair scheduler
 * (bench/fcfs-gateway.ts) as the baseline. Figures per team and for the whole run come from what
 * the fake recorded at its door (test/support/team-load.ts).
 *
 * BENCH_SECONDS (default 15) sets the length of each run.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FLEET_APP_ID, startFakeZimProcess, startReplicas, waitForLimiterMode, warmUp } from '../test/support/fleet.js';
import { stopAllGateways } from '../test/support/gateway-process.js';
import { startPrivateRedis, stopAllRedis } from '../test/support/redis-server.js';
import {
  closedLoop,
  openLoop,
  runTeamLoad,
  saturatedPeriod,
  teamRunFigures,
  unexpectedAnswers,
  type Team,
  type TeamRunFigures,
} from '../test/support/team-load.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECRET = 'bench-secret-not-a-real-one-9d2b';
const CLIENTS = { batch: 'bench-key-batch-0001', web: 'bench-key-web-0002', ops: 'bench-key-ops-0003' } as const;
/** `trafficLabel`: how the team sends, for the table. */
const TEAMS: ReadonlyArray<Team & { trafficLabel: string }> = [
  { name: 'batch', key: CLIENTS.batch, traffic: closedLoop(40), trafficLabel: '40 callers' },
  { name: 'web', key: CLIENTS.web, traffic: openLoop(4), trafficLabel: '4/s' },
  { name: 'ops', key: CLIENTS.ops, traffic: openLoop(2), trafficLabel: '2/s' },
];
const QPS = 20;
const WINDOW_MS = 1000;
const CALL_DEADLINE_MS = 10_000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);

const VARIANTS = [
  { name: 'as built', script: path.join(ROOT, 'dist/main.js') },
  { name: 'FCFS (baseline)', script: path.join(ROOT, 'dist-bench/bench/fcfs-gateway.js') },
];

/** Answers other than 201 or 429 with Retry-After, in any variant: the run then exits 1. */
const problems: string[] = [];

async function runVariant(name: string, script: string, redisUrl: string): Promise<TeamRunFigures> {
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
        ZEGO_CALL_DEADLINE_MS: String(CALL_DEADLINE_MS),
      },
    });
    await Promise.all(gateways.map((gateway) => waitForLimiterMode(gateway, 'shared')));
    await warmUp(gateways, CLIENTS.web, `warm${Date.now()}`);
    const before = (await fake.calls()).length;
    const load = await runTeamLoad({
      gateways,
      teams: TEAMS,
      durationMs: SECONDS * 1000,
      requestTimeoutMs: CALL_DEADLINE_MS + 5_000,
      runId: Date.now().toString(36).slice(-6),
    });
    const unexpected = unexpectedAnswers(load.answers);
    if (unexpected.length > 0) {
      const first = unexpected[0]!;
      problems.push(`${name}: ${unexpected.length} answers neither 201 nor 429 with Retry-After, e.g. ${first.status} ${first.error ?? first.body ?? ''}`);
    }
    const calls = (await fake.calls()).slice(before);
    return teamRunFigures(calls, load, { qpsLimit: QPS, windowMs: WINDOW_MS, ...saturatedPeriod(load) });
  } finally {
    await stopAllGateways();
    await fake.process.stop();
  }
}

function row(cells: Array<string | number>, widths: readonly number[]): string {
  return cells.map((cell, i) => String(cell).padEnd(widths[i] ?? 12)).join('');
}

const percent = (share: number): string => `${(share * 100).toFixed(1)}%`;
const times = (ours: number, baseline: number): string => `x${(ours / baseline).toFixed(2)}`;

async function main(): Promise<void> {
  const redis = await startPrivateRedis();
  const results: Array<[string, TeamRunFigures]> = [];
  try {
    for (const variant of VARIANTS) results.push([variant.name, await runVariant(variant.name, variant.script, redis.url)]);
  } finally {
    await stopAllRedis();
  }

  const cpus = os.cpus();
  const out = (text: string): void => void process.stdout.write(`${text}\n`);
  out(
    `\nmachine: ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
      `node ${process.version}, ${os.platform()} ${os.release()}`,
  );
  out(
    `scenario: 3 replicas, ${TEAMS.map((t) => `${t.name} ${t.trafficLabel}`).join(', ')}, all interactive, equal weights; ` +
      `${SECONDS} s, budget ${QPS} calls per ${WINDOW_MS} ms\n`,
  );
  const teamWidths = [18, 8, 12, 8, 10, 10, 12, 12];
  out(row(['variant', 'team', 'traffic', 'sent', 'created', 'rooms/s', '201 p50 ms', '201 p99 ms'], teamWidths));
  for (const [name, figures] of results) {
    for (const team of TEAMS) {
      const f = figures.teams[team.name]!;
      out(
        row(
          [
            name,
            team.name,
            team.trafficLabel,
            f.sent,
            percent(f.createdShare),
            f.roomsPerSecond.toFixed(2),
            f.createdLatencyP50Ms.toFixed(0),
            f.createdLatencyP99Ms.toFixed(0),
          ],
          teamWidths,
        ),
      );
    }
  }
  const wholeWidths = [18, 12, 12, 10, 12, 12];
  out('\n' + row(['variant', 'max in 1 s', '660300005', 'rooms/s', 'of budget', 'offered/s'], wholeWidths));
  for (const [name, f] of results) {
    out(
      row(
        [name, f.maxInAnyWindow, f.vendorRefusals, f.roomsPerSecond.toFixed(2), percent(f.budgetShare), f.offeredPerSecond.toFixed(1)],
        wholeWidths,
      ),
    );
  }

  const [ours, baseline] = results.map(([, f]) => f) as [TeamRunFigures, TeamRunFigures];
  out('\nours / baseline:');
  for (const team of TEAMS) {
    const o = ours.teams[team.name]!;
    const b = baseline.teams[team.name]!;
    out(
      `  ${team.name}: created ${times(o.createdShare, b.createdShare)}, rooms/s ${times(o.roomsPerSecond, b.roomsPerSecond)}, ` +
        `201 p50 ${times(o.createdLatencyP50Ms, b.createdLatencyP50Ms)}, 201 p99 ${times(o.createdLatencyP99Ms, b.createdLatencyP99Ms)}`,
    );
  }
  out(
    `  whole run: rooms per second ${times(ours.roomsPerSecond, baseline.roomsPerSecond)}, ` +
      `most calls in one window ${times(ours.maxInAnyWindow, baseline.maxInAnyWindow)}, ` +
      `vendor refusals ${ours.vendorRefusals} vs ${baseline.vendorRefusals}`,
  );
  for (const [name, f] of results) {
    out(`statuses (${name}): ${TEAMS.map((t) => `${t.name} ${JSON.stringify(f.teams[t.name]!.statuses)}`).join('; ')}`);
  }
  if (problems.length > 0) {
    out('\nFAILED:');
    for (const problem of problems) out(`  - ${problem}`);
    process.exit(1);
  }
}

main().catch(async (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await stopAllGateways();
  await stopAllRedis();
  process.exit(1);
});
