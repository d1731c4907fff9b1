/**
 * The cap across a real network: three gateway processes and one Redis, and between the gateways
 * and the fake vendor a TCP proxy in its own process that behaves like a wide-area path (a set-up
 * delay per new connection before its first byte moves, a one-way delay and jitter), with the fake
 * answering in a spread of times. What counts is what reached the fake's door.
 */
import { describe, expect, it } from '@jest/globals';
import { criterion, unmet, type Criterion } from '../support/criteria.js';
import { budgetUsed, fleetScenario, THREE_FLOODING_ALIKE, type Fleet, type FleetRun } from '../support/fleet-scenario.js';
import { metricSum, type MetricSample } from '../support/prometheus-text.js';
import type { Shaping } from '../support/tcp-proxy-process.js';

/** What the replicas say of their vendor connections since they started, summed over the fleet. */
function connectionFigures(scrapes: readonly MetricSample[][]): Record<string, number> {
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

/** One saturated run, its vendor connections printed. */
async function saturatedRun(fleet: Fleet, label: string): Promise<FleetRun<undefined>> {
  const run = await fleet.run(label, { teams: THREE_FLOODING_ALIKE });
  process.stdout.write(`connections: ${JSON.stringify(connectionFigures(run.metricsAfter))}\n`);
  return run;
}

function capAndBudget(run: FleetRun<undefined>): Criterion[] {
  const { openedOnPath } = connectionFigures(run.metricsAfter);
  return [
    ...run.capAtTheDoor,
    budgetUsed(run.figures),
    // Counted since each fleet started: no call ever opened a connection on its slot's path.
    criterion("no connection opened on a call's path", openedOnPath === 0, openedOnPath),
  ];
}

/** Shapes the path; the fake answers in [minMs, maxMs]. */
async function shape(fleet: Fleet, shaping: Shaping, answer: { minMs: number; maxMs: number }): Promise<void> {
  await fleet.vendorProxy.shape(shaping);
  await fleet.fake.setAnswerTime(answer);
}

const oneWay = (delayMs: number, jitterMs = 0): Pick<Shaping, 'upstream' | 'downstream'> => ({
  upstream: { delayMs, jitterMs },
  downstream: { delayMs, jitterMs },
});

describe('three replicas reaching the vendor over a wide-area path (plain HTTP through a TCP proxy)', () => {
  const fleet = fleetScenario({ vendorProxy: true });

  it('holds the cap with 80 ms to set up each new connection, 40 ms each way, answers of 100-300 ms', async () => {
    await shape(fleet, { setupDelayMs: 80, ...oneWay(40) }, { minMs: 100, maxMs: 300 });
    const run = await saturatedRun(fleet, 'wide area, setup 80 ms, one-way 40 ms, answers 100-300 ms');
    expect(run.unexpectedAnswers).toEqual([]);
    expect(unmet(capAndBudget(run))).toEqual([]);
  });

  it('holds the cap with 250 ms handshakes, 20 ms each way and 20 ms of jitter, answers of 50-500 ms', async () => {
    await shape(fleet, { setupDelayMs: 250, ...oneWay(20, 20) }, { minMs: 50, maxMs: 500 });
    const run = await saturatedRun(fleet, 'wide area, setup 250 ms, one-way 20-40 ms, answers 50-500 ms');
    expect(run.unexpectedAnswers).toEqual([]);
    expect(unmet(capAndBudget(run))).toEqual([]);
  });

  it('holds the cap 100 ms away each way with 20 ms of jitter, 80 ms handshakes, answers of 100-300 ms', async () => {
    await shape(fleet, { setupDelayMs: 80, ...oneWay(100, 20) }, { minMs: 100, maxMs: 300 });
    const run = await saturatedRun(fleet, 'wide area, setup 80 ms, one-way 100-120 ms, answers 100-300 ms');
    expect(run.unexpectedAnswers).toEqual([]);
    expect(unmet(capAndBudget(run))).toEqual([]);
  });

  it('loses no request and sends no late call while the vendor closes idle connections after a short keep-alive', async () => {
    await shape(fleet, { setupDelayMs: 80, ...oneWay(20) }, { minMs: 50, maxMs: 150 });
    // Node's agent honours the vendor's Keep-Alive hint less a second: 2 s announced, 1 s kept.
    await fleet.fake.setKeepAliveTimeout(2_000);
    try {
      const run = await saturatedRun(fleet, 'wide area, vendor keep-alive 2 s, setup 80 ms, one-way 20 ms, answers 50-150 ms');
      expect(run.unexpectedAnswers).toEqual([]);
      expect(unmet(capAndBudget(run))).toEqual([]);
    } finally {
      await fleet.fake.setKeepAliveTimeout(5_000);
    }
  });
});

describe('the same over HTTPS (the fake behind a self-signed certificate the gateways trust)', () => {
  const fleet = fleetScenario({ vendorProxy: true, vendorTls: true });

  it('holds the cap with 80 ms handshakes and 40 ms each way, reusing connections and TLS sessions', async () => {
    await shape(fleet, { setupDelayMs: 80, ...oneWay(40) }, { minMs: 100, maxMs: 300 });
    const before = await fleet.fake.connections();
    const run = await saturatedRun(fleet, 'wide area, HTTPS, setup 80 ms, one-way 40 ms, answers 100-300 ms');
    const after = await fleet.fake.connections();
    const opened = after.opened - before.opened;
    const resumed = after.tlsSessionsReused! - before.tlsSessionsReused!;
    const created = run.load.answers.filter((a) => a.status === 201).length;
    process.stdout.write(`HTTPS: ${opened} connections opened for ${created} rooms; TLS sessions resumed ${resumed}\n`);

    expect(run.unexpectedAnswers).toEqual([]);
    expect(
      unmet([
        ...capAndBudget(run),
        criterion('connections are reused: far fewer opened than rooms created', opened * 4 <= created, `${opened} for ${created}`),
        criterion('new connections resume a TLS session', opened === 0 || resumed >= Math.floor(opened / 2), `${resumed} of ${opened}`),
      ]),
    ).toEqual([]);
  });
});
