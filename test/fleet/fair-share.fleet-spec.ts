/**
 * How the vendor budget is shared between client teams whose demand together exceeds it, measured
 * where the vendor counts: three gateway replicas sharing one private Redis, the fake vendor in
 * its own process, and teams sending at once (test/support/team-load.ts).
 *
 * The outbound scheduler shares the budget by weighted max-min fairness between clients
 * (CLIENT_WEIGHTS, 1 each by default), within two priority levels: `interactive`, and `batch`
 * (CLIENT_PRIORITIES, or a request's own `X-Priority: batch`), which gets what interactive leaves
 * plus a guaranteed minimum share (RATE_LIMIT_BATCH_MIN_SHARE, 0.1) while it has work waiting.
 * Each scenario keeps the cap: at most 20 calls in any 1000 ms window at the vendor's door.
 *
 * One fleet serves every scenario: the weights and the priority name clients that only their own
 * scenario sends from, and an idle client takes no share. Client quotas are out of the way.
 */
import { describe, expect, it } from '@jest/globals';
import { ZimCode } from '../fake-zim/fake-zim-server.js';
import { criterion, percent, unmet, type Criterion } from '../support/criteria.js';
import { vendorCallRoomId } from '../support/fleet.js';
import {
  budgetUsed,
  fleetScenario,
  servedPromptly,
  STEADY_BESIDE_A_FLOOD,
  team,
  type FleetClient,
  type FleetRun,
} from '../support/fleet-scenario.js';
import { metricSum, type MetricSample } from '../support/prometheus-text.js';
import { closedLoop, openLoop } from '../support/team-load.js';

const GRANTED = 'zim_gateway_outbound_slots_granted_total';

const fleet = fleetScenario({ env: { CLIENT_WEIGHTS: 'heavy:3,light:1', CLIENT_PRIORITIES: 'nightly:batch' } });

type Run = FleetRun<undefined>;

/** Slots granted to `client` at `priority` during the run, over every replica. */
function grantedDuring(run: Run, client: FleetClient, priority: 'interactive' | 'batch'): number {
  const total = (all: MetricSample[][]): number => all.reduce((sum, samples) => sum + metricSum(samples, GRANTED, { client, priority }), 0);
  return total(run.metricsAfter) - total(run.metricsBefore);
}

/** Rooms the vendor created for `client` during the run (its whole length, tail included). */
function roomsCreated(run: Run, client: FleetClient): number {
  return run.calls.filter((c) => c.code === ZimCode.success && vendorCallRoomId(c)?.startsWith(`${client}-`)).length;
}

/** Each client's slots are counted at its priority, and at none other. */
function grantedAt(run: Run, client: FleetClient, priority: 'interactive' | 'batch'): Criterion[] {
  const other = priority === 'batch' ? 'interactive' : 'batch';
  const granted = grantedDuring(run, client, priority);
  const created = roomsCreated(run, client);
  return [
    criterion(`${GRANTED}{client="${client}",priority="${priority}"} counts every room ${client} created`, granted >= created && created > 0, `${granted} slots, ${created} rooms`),
    criterion(`${GRANTED}{client="${client}",priority="${other}"} stays at 0`, grantedDuring(run, client, other) === 0, grantedDuring(run, client, other)),
  ];
}

describe('three replicas, one Redis, teams whose demand together exceeds the budget', () => {
  it('shares it between clients: two steady teams keep getting through while a third floods, and the budget is used', async () => {
    const result = await fleet.run('fair share, batch floods (40 callers), web 4/s and ops 2/s, equal weights, all interactive', {
      teams: STEADY_BESIDE_A_FLOOD,
    });
    const { figures } = result;

    expect(result.unexpectedAnswers).toEqual([]);
    expect(
      unmet([
        ...servedPromptly(figures, 'web', 'ops'),
        budgetUsed(figures),
        ...result.capAtTheDoor,
        ...grantedAt(result, 'web', 'interactive'),
        // A client named "batch" is still interactive: its level comes from CLIENT_PRIORITIES only.
        ...grantedAt(result, 'batch', 'interactive'),
      ]),
    ).toEqual([]);
  });

  it('shares it by weight: two clients flooding alike, weighted 3:1, get rooms in that ratio', async () => {
    const result = await fleet.run('fair share, heavy and light flood (30 callers each), CLIENT_WEIGHTS=heavy:3,light:1', {
      teams: [team('heavy', closedLoop(30)), team('light', closedLoop(30))],
    });
    const { figures } = result;
    const ratio = figures.teams.heavy!.roomsPerSecond / figures.teams.light!.roomsPerSecond;

    expect(result.unexpectedAnswers).toEqual([]);
    expect(
      unmet([
        // 3:1 within 15%.
        criterion('heavy / light rooms between 2.55 and 3.45', ratio >= 2.55 && ratio <= 3.45, ratio.toFixed(2)),
        budgetUsed(figures),
        ...result.capAtTheDoor,
      ]),
    ).toEqual([]);
  });

  /**
   * The batch level's guaranteed share, checked as a part of the rooms created over the saturated
   * period: at least 10%, less one percentage point. A run's saturated period holds about 200
   * rooms, so one point is two rooms: a batch slot at either edge of the period can fall outside
   * it, and the scheduler's own accounting need not line up with the period's start.
   */
  const BATCH_MIN_SHARE_MEASURED = 0.09;
  /** What a batch client floods beside: an interactive flood and the two steady teams. */
  const BESIDE_BATCH = [team('bulk', closedLoop(20)), team('web', openLoop(4)), team('ops', openLoop(2))];

  /** The interactive teams served first, the batch client its minimum share, its slots counted as batch, the cap kept. */
  function batchBesideInteractive(result: Run, batchClient: FleetClient): Criterion[] {
    const share = result.figures.teams[batchClient]!.shareOfRooms;
    return [
      ...servedPromptly(result.figures, 'web', 'ops'),
      criterion(
        `${batchClient}: at least ${percent(BATCH_MIN_SHARE_MEASURED)} of the rooms created (minimum share 10%)`,
        share >= BATCH_MIN_SHARE_MEASURED,
        percent(share),
      ),
      ...result.capAtTheDoor,
      ...grantedAt(result, batchClient, 'batch'),
    ];
  }

  it('serves interactive teams first and still gives a batch client (CLIENT_PRIORITIES) its minimum share', async () => {
    const result = await fleet.run('fair share, nightly (batch) floods (40 callers); bulk floods (20), web 4/s, ops 2/s, interactive', {
      teams: [team('nightly', closedLoop(40)), ...BESIDE_BATCH],
    });

    expect(result.unexpectedAnswers).toEqual([]);
    expect(unmet([...batchBesideInteractive(result, 'nightly'), ...grantedAt(result, 'bulk', 'interactive')])).toEqual([]);
  });

  it('treats a request that lowers itself with X-Priority: batch as batch, beside the same interactive teams', async () => {
    const result = await fleet.run('fair share, reports floods with X-Priority: batch (40 callers); bulk floods (20), web 4/s, ops 2/s, interactive', {
      teams: [team('reports', closedLoop(40), { 'X-Priority': 'batch' }), ...BESIDE_BATCH],
    });

    expect(result.unexpectedAnswers).toEqual([]);
    expect(unmet(batchBesideInteractive(result, 'reports'))).toEqual([]);
  });
});
