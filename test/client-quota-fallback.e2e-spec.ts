/**
 * Per-client quotas while Redis is down, with real gateway processes and a private Redis: each
 * replica admits its share of a client's quota, split over the fleet Redis last counted, not over
 * RATE_LIMIT_REPLICAS (the largest fleet the HPA may run). Only a replica that never reached Redis
 * falls back to RATE_LIMIT_REPLICAS.
 */
import { describe, expect, it } from '@jest/globals';
import { metricSum, scrapeMetrics } from './support/prometheus-text.js';
import { waitFor } from './support/async-probes.js';
import { waitForLimiterMode } from './support/fleet.js';
import type { GatewayProcess } from './support/gateway-process.js';
import { scenario } from './support/scenario.js';

const APP_ID = 1414213562;
const SECRET = 'SENTINEL-secret-quota-down-4e8b1c7a3f90d256';
const KEY = 'sk-SENTINEL-quota-down-9a2d6f0c8e41b735';
const QUOTA = 6;
const ASSUMED_REPLICAS = 6;
const BURST = 4 * QUOTA;

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { 'quota-team': KEY },
  env: {
    ZEGO_DEFAULT_FROM_USER_ID: 'quota-down-operator',
    CLIENT_RATE_LIMITS: `quota-team:${QUOTA}`,
    RATE_LIMIT_REPLICAS: String(ASSUMED_REPLICAS),
  },
  redis: 'private',
});
let counter = 0;

/**
 * BURST concurrent requests of the client to one replica: how many its quota let through (any
 * answer but a quota's 429: a room, or a 429 for the vendor budget) and how long they took to arrive.
 */
async function burst(gateway: GatewayProcess): Promise<{ admitted: number; elapsedMs: number }> {
  const started = Date.now();
  const bodies = await Promise.all(
    Array.from({ length: BURST }, async () => {
      const response = await fetch(`${gateway.url}/rooms`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ roomId: `quota-down-${++counter}` }),
        signal: AbortSignal.timeout(15_000),
      });
      return { status: response.status, text: await response.text() };
    }),
  );
  const elapsedMs = Date.now() - started;
  expect(bodies.filter(({ status }) => status !== 201 && status !== 429)).toEqual([]);
  const quotaRefusals = bodies.filter(({ status, text }) => status === 429 && text.includes(`quota of ${QUOTA} requests`));
  return { admitted: bodies.length - quotaRefusals.length, elapsedMs };
}

/** The most a sliding one-second quota of `perSecond` admits over `elapsedMs`. */
const mostAdmitted = (perSecond: number, elapsedMs: number): number => perSecond * Math.max(1, Math.ceil(elapsedMs / 1000));

describe('per-client quota while Redis is down', () => {
  it('admits on each replica the quota split over the fleet Redis counted (2), and floor(quota / RATE_LIMIT_REPLICAS) on a replica that never reached Redis', async () => {
    const env = { REDIS_URL: s.redis.url };
    const fleet = await Promise.all([s.startGateway(env), s.startGateway(env)]);
    await Promise.all(fleet.map((g) => waitForLimiterMode(g, 'shared')));
    await waitFor(
      async () =>
        (await Promise.all(fleet.map((g) => scrapeMetrics(g.url)))).every(
          (samples) => metricSum(samples, 'zim_gateway_fleet_members', { state: 'active' }) === 2,
        ),
      { what: 'both replicas counting a fleet of 2', timeoutMs: 10_000, intervalMs: 100 },
    );

    const marks = fleet.map((g) => g.logMark());
    await s.redis.stop();
    await Promise.all(fleet.map((g, i) => waitForLimiterMode(g, 'local', { since: marks[i] })));
    const counted = await burst(fleet[0]!);
    const share = Math.floor(QUOTA / 2);
    expect(counted.admitted).toBeGreaterThanOrEqual(share);
    expect(counted.admitted).toBeLessThanOrEqual(mostAdmitted(share, counted.elapsedMs));

    // Started during the outage: it has seen no fleet, so it assumes the largest.
    const newcomer = await s.startGateway(env);
    const assumed = await burst(newcomer);
    const assumedShare = Math.max(1, Math.floor(QUOTA / ASSUMED_REPLICAS));
    expect(assumed.admitted).toBeGreaterThanOrEqual(assumedShare);
    expect(assumed.admitted).toBeLessThanOrEqual(mostAdmitted(assumedShare, assumed.elapsedMs));
    await s.redis.restart();
  }, 60_000);
});
