/**
 * A runaway client costs its neighbours nothing: one team's job loops without backoff against one
 * replica (100 connections, each asking again the moment its 429 came), while two light teams
 * send steadily over the whole fleet. Three replicas sharing one private Redis, the fake vendor in
 * its own process, the flood in a process of its own (test/support/flood-load.ts).
 *
 * The light teams still get their rooms, the runaway gets no more than its quota (counted where the
 * vendor counts, by its rooms' prefix), and the vendor's cap holds. How much slower the light
 * teams are during the flood is a figure of `npm run bench:flood`, printed here, not asserted.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { criterion, milliseconds, percent, unmet, type Criterion } from '../support/criteria.js';
import { percentile, type VendorCall } from '../support/fleet.js';
import { FLEET_CLIENTS, fleetScenario, LONGEST_RUN_MS, team, type FleetClient, type FleetRun } from '../support/fleet-scenario.js';
import {
  answersPerSecond,
  floodFor,
  floodRoomsAtVendor,
  formatFloodReport,
  mostAdmittedByQuota,
  stopAllFloods,
  type FloodReport,
} from '../support/flood-load.js';
import { openLoop } from '../support/team-load.js';

/** The runaway: a fleet client whose job floods, at the default quota; the other clients keep the fleet's, out of the way. */
const RUNAWAY: FleetClient = 'bulk';
const RUNAWAY_QUOTA = 10;
const ROOM_PREFIX = `${RUNAWAY}-flood`;
const LIGHT_TEAMS = [team('web', openLoop(4)), team('ops', openLoop(2))];
/** Long enough for ~120 light requests (so 99% means at most one lost), short enough for the suite. */
const FLOOD_MS = 20_000;
/**
 * What makes it a flood: refused at least this many times its quota each second. On the 2-core
 * development machine the flooded replica refuses 1500-2500 a second; this only says the scenario
 * ran, so it stays far below that.
 */
const FLOOD_AT_LEAST_QUOTAS = 20;

const fleet = fleetScenario({ env: { CLIENT_RATE_LIMITS: `${RUNAWAY}:${RUNAWAY_QUOTA}` } });
afterAll(stopAllFloods);

function lightTeamsServed(run: FleetRun<FloodReport>): Criterion[] {
  return LIGHT_TEAMS.map(({ name }) => {
    const f = run.figures.teams[name]!;
    return criterion(`${name}: at least 99% of its rooms created (201)`, f.createdShare >= 0.99, `${percent(f.createdShare)}, ${JSON.stringify(f.statuses)}`);
  });
}

function runawayKeptToItsQuota(calls: readonly VendorCall[], flood: FloodReport): Criterion[] {
  const rooms = floodRoomsAtVendor(calls, ROOM_PREFIX);
  const bound = mostAdmittedByQuota(RUNAWAY_QUOTA, flood);
  const refusedPerSecond = answersPerSecond(flood, '429');
  const other = Object.keys(flood.statuses).filter((status) => status !== '201' && status !== '429');
  return [
    criterion(
      `${RUNAWAY}: at most ${RUNAWAY_QUOTA}/s x ceil(seconds) + ${RUNAWAY_QUOTA} rooms asked of the vendor (${bound})`,
      rooms <= bound,
      rooms,
    ),
    // Proves the count above finds the flood's rooms at all.
    criterion(`${RUNAWAY}: some rooms within its quota`, rooms > 0, rooms),
    criterion(
      `${RUNAWAY}: refused at least ${FLOOD_AT_LEAST_QUOTAS} x its quota per second (a flood, not a trickle)`,
      refusedPerSecond >= FLOOD_AT_LEAST_QUOTAS * RUNAWAY_QUOTA,
      `${refusedPerSecond.toFixed(0)}/s`,
    ),
    criterion(`${RUNAWAY}: answered 201 or 429 only`, other.length === 0, JSON.stringify(flood.statuses)),
  ];
}

/** The light teams' latency through the flooded replica and through the others (printed, not asserted). */
function latencyByReplica(run: FleetRun<FloodReport>): string {
  const created = run.load.answers.filter((a) => a.status === 201);
  const line = (label: string, latencies: number[]): string =>
    `${label}: n=${latencies.length} p50 ${milliseconds(percentile(latencies, 0.5))} p99 ${milliseconds(percentile(latencies, 0.99))}`;
  return [
    line('light teams via the flooded replica', created.filter((a) => a.gateway === 0).map((a) => a.latencyMs)),
    line('light teams via the other replicas', created.filter((a) => a.gateway !== 0).map((a) => a.latencyMs)),
  ].join('\n');
}

describe('three replicas, one Redis: a client flooding one replica beside two light teams', () => {
  it('keeps the light teams served and the runaway to its quota, and the vendor cap holds', async () => {
    const flooded = fleet.gateways[0]!;
    // The flood as the run's `during`: it starts inside the run's record at the vendor's door (so
    // every call of its quota is captured), and the light teams send for as long as it lasts.
    const run = await fleet.run(`neighbours: ${RUNAWAY} floods replica 0 (100 connections, quota ${RUNAWAY_QUOTA}/s), web 4/s and ops 2/s`, {
      teams: LIGHT_TEAMS,
      durationMs: LONGEST_RUN_MS,
      during: () => floodFor({ targetUrl: flooded.url, apiKey: FLEET_CLIENTS[RUNAWAY], roomPrefix: ROOM_PREFIX, durationMs: FLOOD_MS }),
    });
    const { calls, during: flood } = run;
    // fleet.run printed the teams' figures and each replica's changes of limiter mode (a saturated
    // event loop reads Redis as slow); these are the flood's.
    process.stdout.write(
      `${formatFloodReport(flood)}\n${RUNAWAY}: ${floodRoomsAtVendor(calls, ROOM_PREFIX)} rooms asked of the vendor\n${latencyByReplica(run)}\n`,
    );

    expect(unmet([...lightTeamsServed(run), ...runawayKeptToItsQuota(calls, flood), ...run.capAtTheDoor])).toEqual([]);
  });
});
