/**
 * A Redis that is slow, not down, for the whole fleet: three gateway replicas each reach Redis
 * through one TCP proxy (test/support/tcp-proxy-process.ts) that delays every chunk each way.
 * Two kinds of traffic at each round trip: one caller with one request at a time (each request
 * alone, granted a free slot for "now", which reaches its replica a one-way trip late: the path on
 * which late slots were traded in a loop until the client gave up), then sixty callers asking for
 * three times the budget (the queue always full, slots granted ahead). Whatever the round trip:
 *
 * - the cap holds at the vendor's door (no window of 1000 ms over 20 calls, on the kernel's clock);
 * - every request ends within its deadline (ZEGO_CALL_DEADLINE_MS, a second of slack), as a 201,
 *   the budget's 429, or the Redis-down policy's answer (503 under `reject`);
 * - past RATE_LIMIT_SLOW_REDIS_MS (the median round trip of recent script runs) a replica treats
 *   Redis as down for the budget, logs and counts the change, and returns to the shared scheduler
 *   once the round trip is back under half of it: the fleet then uses the budget as before;
 * - a slow episode leaves nothing behind: a fresh fleet on the same Redis, after the slow one was
 *   stopped with SIGTERM, gets the whole budget at once (not after the minute a lapsed member is
 *   remembered for).
 *
 * The budget used at each round trip is printed (a benchmark figure, see `npm run bench:limiter`),
 * not asserted; where the budget is asserted it is a share over a span, with a tolerance.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { criterion, milliseconds, percent, unmet, type Criterion } from '../support/criteria.js';
import { limiterModeLines, untilEveryReplicaShared } from '../support/fleet.js';
import {
  budgetShareBetween,
  CALL_DEADLINE_MS,
  fleetScenario,
  LONGEST_RUN_MS,
  team,
  THREE_FLOODING_ALIKE,
  type FleetRun,
} from '../support/fleet-scenario.js';
import { metricSum, scrapeMetrics, type MetricSample } from '../support/prometheus-text.js';
import type { Shaping } from '../support/tcp-proxy-process.js';
import { closedLoop, type Team, type TeamAnswer } from '../support/team-load.js';

/** RATE_LIMIT_SLOW_REDIS_MS, set explicitly (it is the default): past it Redis counts as down for the budget. */
const SLOW_REDIS_MS = 75;
/** What a request may take past its deadline: the answer's own way out on a busy machine. */
const DEADLINE_SLACK_MS = 1_000;
/** Shorter than a fleet's usual run: the saturated runs here assert the cap and the answers, each over ~130 calls. */
const SATURATED_RUN_MS = 7_000;
const QUIET_RUN_MS = 4_000;

/** A quiet fleet: one caller, one request at a time, each alone: nobody queued, a free slot at once. */
const QUIET: readonly Team[] = [team('web', closedLoop(1))];

const MODE_CHANGES = 'zim_gateway_outbound_limiter_mode_changes_total';
const ROUND_TRIP = 'zim_gateway_redis_round_trip_seconds';
const MODE = 'zim_gateway_outbound_limiter_mode';

const oneWay = (delayMs: number, jitterMs = 0): Shaping => ({ upstream: { delayMs, jitterMs }, downstream: { delayMs, jitterMs } });
/** Redis nearby: about 2 ms there and back through the proxy. */
const NEAR = oneWay(1);

function withinDeadline(run: FleetRun<unknown>): Criterion {
  const slowest = Math.max(...run.load.answers.map((a) => a.latencyMs));
  return criterion(
    `every request answered within the call deadline (${CALL_DEADLINE_MS} ms) and ${DEADLINE_SLACK_MS} ms`,
    slowest < CALL_DEADLINE_MS + DEADLINE_SLACK_MS,
    `slowest ${milliseconds(slowest)}`,
  );
}

/** The criteria of one of a case's runs, named after it. */
function of(run: string, criteria: readonly Criterion[]): Criterion[] {
  return criteria.map((c) => ({ ...c, what: `${run}: ${c.what}` }));
}

/** Under RATE_LIMIT_ON_REDIS_DOWN=reject a vendor call may also be refused with 503 and a whole-seconds Retry-After. */
function unexpectedUnderReject(run: FleetRun<unknown>): TeamAnswer[] {
  return run.unexpectedAnswers.filter((a) => !(a.status === 503 && /^[1-9]\d*$/.test(a.retryAfter ?? '')));
}

/** Each replica's mode at the end of a run, from its gauge. */
function modesAfter(run: FleetRun<unknown>): string[] {
  return run.metricsAfter.map(
    (samples) => ['shared', 'local', 'reject'].find((mode) => metricSum(samples, MODE, { mode }) === 1) ?? 'none',
  );
}

/** How often each replica's counter of mode changes went up over the run, for one mode and reason. */
function modeChangesDuring(run: FleetRun<unknown>, mode: string, reason: string): number[] {
  return run.metricsAfter.map(
    (after, i) => metricSum(after, MODE_CHANGES, { mode, reason }) - metricSum(run.metricsBefore[i]!, MODE_CHANGES, { mode, reason }),
  );
}

function roundTripsMs(scrapes: readonly MetricSample[][]): number[] {
  return scrapes.map((samples) => Math.round(metricSum(samples, ROUND_TRIP) * 1000));
}

function statusCounts(answers: readonly TeamAnswer[]): string {
  const counts: Record<string, number> = {};
  for (const a of answers) {
    const label = a.error ? 'no answer' : String(a.status);
    counts[label] = (counts[label] ?? 0) + 1;
  }
  return JSON.stringify(counts);
}

/** The line printed per round trip: what `bench:limiter` tabulates, from a spec's run. */
function printRoundTrip(label: string, run: FleetRun<unknown>): void {
  const slowest = Math.max(...run.load.answers.map((a) => a.latencyMs));
  process.stdout.write(
    `${label}: worst window ${run.door.kernelMax ?? run.door.fakeMax}, budget used ${percent(run.figures.budgetShare)}, ` +
      `slowest answer ${milliseconds(slowest)}, statuses ${statusCounts(run.load.answers)}, modes at the end ${JSON.stringify(modesAfter(run))}, ` +
      `round trips measured ${JSON.stringify(roundTripsMs(run.metricsAfter))} ms\n`,
  );
}

describe('three replicas, Redis slow for all of them (each through a shaping proxy)', () => {
  const fleet = fleetScenario({ redisProxyFor: [0, 1, 2], env: { RATE_LIMIT_SLOW_REDIS_MS: String(SLOW_REDIS_MS) } });

  beforeEach(async () => {
    // Each case starts from Redis nearby and every replica shared, whatever the one before left.
    await fleet.redisProxy.shape(NEAR);
    await untilEveryReplicaShared(fleet.gateways);
  });

  it.each([
    { roundTripMs: 5, oneWayMs: 2.5, jitterMs: 0.5 },
    { roundTripMs: 20, oneWayMs: 10, jitterMs: 2 },
    { roundTripMs: 50, oneWayMs: 25, jitterMs: 2 },
    { roundTripMs: 100, oneWayMs: 50, jitterMs: 5 },
  ])(
    'Redis a $roundTripMs ms round trip away, one caller then a flood: the cap holds, every request ends within its deadline as a 201 or a 429',
    async ({ roundTripMs, oneWayMs, jitterMs }) => {
      await fleet.redisProxy.shape(oneWay(oneWayMs, jitterMs));
      const path = `Redis ${oneWayMs} ms away each way (+${jitterMs} ms jitter)`;
      const quiet = await fleet.run(`${path}, one caller at a time`, { teams: QUIET, durationMs: QUIET_RUN_MS });
      const saturated = await fleet.run(`${path}, three teams flooding`, { teams: THREE_FLOODING_ALIKE, durationMs: SATURATED_RUN_MS });
      printRoundTrip(`round trip about ${roundTripMs} ms, one caller`, quiet);
      printRoundTrip(`round trip about ${roundTripMs} ms, saturated`, saturated);

      expect([...quiet.unexpectedAnswers, ...saturated.unexpectedAnswers]).toEqual([]);
      expect(
        unmet([
          ...of('quiet', [...quiet.capAtTheDoor, withinDeadline(quiet)]),
          ...of('saturated', [...saturated.capAtTheDoor, withinDeadline(saturated)]),
        ]),
      ).toEqual([]);
    },
  );

  it('round trip 2 ms, then 80 ms for 5 s, then 2 ms: the cap holds, each replica goes local and back (logged and counted), the budget is used again within seconds', async () => {
    const RECOVERY_MS = 3_000;
    const MEASURED_MS = 5_000;
    const marks = fleet.gateways.map((g) => g.logMark());
    const run = await fleet.run('Redis 1 ms away each way, then 40 ms for 5 s, then 1 ms again', {
      teams: THREE_FLOODING_ALIKE,
      durationMs: LONGEST_RUN_MS,
      during: async () => {
        // Saturated and shared first; then slow past RATE_LIMIT_SLOW_REDIS_MS (a fixed 80 ms round trip).
        await sleep(3_000);
        await fleet.redisProxy.shape(oneWay(40));
        const slowAt = Date.now();
        await sleep(5_000);
        const whileSlow = await Promise.all(fleet.gateways.map((g) => scrapeMetrics(g.url)));
        await fleet.redisProxy.shape(NEAR);
        const nearAgainAt = Date.now();
        // Saturated on through the return and the span measured after it.
        await sleep(RECOVERY_MS + MEASURED_MS);
        return { slowAt, nearAgainAt, whileSlow };
      },
    });
    const { slowAt, nearAgainAt, whileSlow } = run.during;
    const measuredFrom = nearAgainAt + RECOVERY_MS;
    const share = budgetShareBetween(run.calls, measuredFrom, measuredFrom + MEASURED_MS);
    const modeLines = fleet.gateways.map((g, i) => limiterModeLines(g, marks[i]));
    const at = (time: number | undefined): string => (time === undefined ? '?' : `${((time - run.load.startedAt) / 1000).toFixed(2)} s`);
    process.stdout.write(
      `slow from ${at(slowAt)}, near again at ${at(nearAgainAt)}; mode lines per replica:\n` +
        modeLines.map((lines, i) => `  replica ${i}: ${lines.map((l) => `${at(l.timestamp)} ${l.message.slice(0, 120)}`).join(' | ') || 'none'}`).join('\n') +
        `\nround trips measured while slow ${JSON.stringify(roundTripsMs(whileSlow))} ms, at the end ${JSON.stringify(roundTripsMs(run.metricsAfter))} ms; ` +
        `budget used ${RECOVERY_MS / 1000}-${(RECOVERY_MS + MEASURED_MS) / 1000} s after the return: ${percent(share)}\n`,
    );

    const wentLocalForSlowness = modeLines.map((lines) => lines.some((l) => l.mode === 'local' && l.message.startsWith('Outbound limiter mode: local (slow:')));
    const endedShared = modeLines.map((lines) => lines.at(-1)?.mode === 'shared');
    const enteredSlow = modeChangesDuring(run, 'local', 'slow');
    const recovered = modeChangesDuring(run, 'shared', 'recovered');
    const slowTrips = roundTripsMs(whileSlow);
    const endTrips = roundTripsMs(run.metricsAfter);
    expect(run.unexpectedAnswers).toEqual([]);
    expect(
      unmet([
        ...run.capAtTheDoor,
        withinDeadline(run),
        criterion('every replica logged `Outbound limiter mode: local (slow: …)`', wentLocalForSlowness.every(Boolean), JSON.stringify(wentLocalForSlowness)),
        criterion('every replica logged `Outbound limiter mode: shared (…)` after it, and last', endedShared.every(Boolean), JSON.stringify(endedShared)),
        criterion(`every replica counted ${MODE_CHANGES}{mode="local",reason="slow"}`, enteredSlow.every((n) => n >= 1), JSON.stringify(enteredSlow)),
        criterion(`every replica counted ${MODE_CHANGES}{mode="shared",reason="recovered"}`, recovered.every((n) => n >= 1), JSON.stringify(recovered)),
        criterion(
          `every replica's ${ROUND_TRIP} past ${SLOW_REDIS_MS} ms while slow`,
          slowTrips.every((ms) => ms > SLOW_REDIS_MS),
          `${JSON.stringify(slowTrips)} ms`,
        ),
        criterion(
          `every replica's ${ROUND_TRIP} under ${SLOW_REDIS_MS / 2} ms at the end`,
          endTrips.every((ms) => ms < SLOW_REDIS_MS / 2),
          `${JSON.stringify(endTrips)} ms`,
        ),
        criterion('every replica shared at the end (its gauge)', modesAfter(run).every((m) => m === 'shared'), JSON.stringify(modesAfter(run))),
        criterion(
          `at least 90% of the budget turned into rooms ${RECOVERY_MS / 1000}-${(RECOVERY_MS + MEASURED_MS) / 1000} s after Redis was near again`,
          share >= 0.9,
          percent(share),
        ),
      ]),
    ).toEqual([]);
  });
});

describe('the same under RATE_LIMIT_ON_REDIS_DOWN=reject', () => {
  const fleet = fleetScenario({
    redisProxyFor: [0, 1, 2],
    env: { RATE_LIMIT_ON_REDIS_DOWN: 'reject', RATE_LIMIT_SLOW_REDIS_MS: String(SLOW_REDIS_MS) },
  });

  it('Redis a 100 ms round trip away, one caller then a flood: the cap holds, every request ends within its deadline as a 201, a 429 or a 503', async () => {
    await fleet.redisProxy.shape(oneWay(50, 5));
    const path = 'RATE_LIMIT_ON_REDIS_DOWN=reject, Redis 50 ms away each way (+5 ms jitter)';
    const quiet = await fleet.run(`${path}, one caller at a time`, { teams: QUIET, durationMs: QUIET_RUN_MS });
    const saturated = await fleet.run(`${path}, three teams flooding`, { teams: THREE_FLOODING_ALIKE, durationMs: SATURATED_RUN_MS });
    printRoundTrip('reject, round trip about 100 ms, one caller', quiet);
    printRoundTrip('reject, round trip about 100 ms, saturated', saturated);

    expect([...unexpectedUnderReject(quiet), ...unexpectedUnderReject(saturated)]).toEqual([]);
    expect(
      unmet([
        ...of('quiet', [...quiet.capAtTheDoor, withinDeadline(quiet)]),
        ...of('saturated', [...saturated.capAtTheDoor, withinDeadline(saturated)]),
      ]),
    ).toEqual([]);
  });
});

describe('after a slow episode, a fresh fleet on the same Redis', () => {
  const fleet = fleetScenario({ redisProxyFor: [0, 1, 2], env: { RATE_LIMIT_SLOW_REDIS_MS: String(SLOW_REDIS_MS) } });

  it('gets at least 90% of the budget within seconds, not after the minute a lapsed member is remembered', async () => {
    const FROM_MS = 2_000;
    const UNTIL_MS = 7_000;
    // Replicas serving one caller with Redis 25 ms away each way (where its requests were left
    // hanging), stopped (SIGTERM) with its request still in flight.
    await fleet.redisProxy.shape(oneWay(25));
    const slow = await fleet.stopReplicas({ underLoad: { teams: QUIET, sendMs: 4_000 } });
    process.stdout.write(
      `slow fleet: answers ${statusCounts(slow.load!.answers)}, stopped in ${milliseconds(slow.stopMs)}, exit codes ${JSON.stringify(slow.exitCodes)}\n`,
    );

    await fleet.startReplicas({ redisProxyFor: [] });
    // What the fresh fleet found in Redis: members remembered as lapsed (printed; the budget says what it cost).
    const lapsedSeen = await Promise.all(
      fleet.gateways.map(async (g) => metricSum(await scrapeMetrics(g.url), 'zim_gateway_fleet_members', { state: 'lapsed' })),
    );
    const run = await fleet.run('a fresh fleet, Redis reached directly, after the slow one', { teams: THREE_FLOODING_ALIKE, durationMs: UNTIL_MS });
    const share = budgetShareBetween(run.calls, run.load.startedAt + FROM_MS, run.load.startedAt + UNTIL_MS);
    process.stdout.write(
      `fresh fleet: lapsed members seen before its load ${JSON.stringify(lapsedSeen)}; budget used ${FROM_MS / 1000}-${UNTIL_MS / 1000} s into its load: ${percent(share)}\n`,
    );

    expect(run.unexpectedAnswers).toEqual([]);
    expect(
      unmet([
        // Else the slow fleet crashed, and a crashed member's share is kept for a minute by design.
        criterion('every replica of the slow fleet exited by itself on SIGTERM (code 0)', slow.exitCodes.every((c) => c === 0), JSON.stringify(slow.exitCodes)),
        ...run.capAtTheDoor,
        criterion(`at least 90% of the budget turned into rooms ${FROM_MS / 1000}-${UNTIL_MS / 1000} s into the fresh fleet's load`, share >= 0.9, percent(share)),
      ]),
    ).toEqual([]);
  });
});
