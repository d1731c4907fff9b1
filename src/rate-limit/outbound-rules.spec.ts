import { describe, expect, it } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import { loadConfig } from '../app-config.js';
import { quotaPerSecond } from './client-quota-limit.js';
import { localShareRules, outboundRules, schedulerRules } from './outbound-rules.js';

const HASH = 'a'.repeat(64);
const BASE = { ZEGO_APP_ID: '42', ZEGO_SERVER_SECRET: 'not-used-here', API_KEYS: `svc:${HASH}` };

function config(env: Record<string, string> = {}) {
  return loadConfig({ ...BASE, ...env });
}

function contextFor(clientId: string | undefined): ExecutionContext {
  const request = clientId === undefined ? {} : { client: { clientId } };
  return { switchToHttp: () => ({ getRequest: () => request }) } as unknown as ExecutionContext;
}

describe('outboundRules', () => {
  it('is the configured budget and margin', () => {
    expect(outboundRules(config({ ZEGO_QPS_LIMIT: '15', ZEGO_QPS_WINDOW_MS: '2000', RATE_LIMIT_SAFETY_MARGIN_MS: '7' }))).toEqual({
      limit: 15,
      windowMs: 2000,
      safetyMarginMs: 7,
    });
  });
});

describe('localShareRules: one replica’s share while Redis is down', () => {
  it.each([
    [20, 3, 6],
    [20, 1, 20],
    [20, 20, 1],
    [21, 4, 5],
  ])('with a budget of %i and a fleet of %i allows %i per window', (qps, replicas, share) => {
    const rules = localShareRules(config({ ZEGO_QPS_LIMIT: String(qps) }), replicas);
    expect(rules).toMatchObject({ limit: share, windowMs: 1000, safetyMarginMs: 30 });
    // The fleet together stays within the budget.
    expect(rules.limit * replicas).toBeLessThanOrEqual(qps);
    expect(rules.shareName).toMatch(/own share .*Redis is unreachable/);
  });

  it('with more replicas than calls per window, gives each one call per proportionally longer window', () => {
    const rules = localShareRules(config({ ZEGO_QPS_LIMIT: '20' }), 50);
    expect(rules).toMatchObject({ limit: 1, windowMs: 3000, safetyMarginMs: 30 });
    // 50 replicas, one call each per 3 s: at most 16.7 per second.
    expect((50 * 1000) / rules.windowMs).toBeLessThanOrEqual(20);
  });
});

describe('schedulerRules: the fleet’s scheduler', () => {
  it('hands out the configured budget, grants a short horizon ahead, and weighs clients as configured', () => {
    const rules = schedulerRules(config({ CLIENT_WEIGHTS: 'team-a:3,team-b:0.5', RATE_LIMIT_BATCH_MIN_SHARE: '0.25' }));
    expect(rules).toMatchObject({ limit: 20, windowMs: 1000, safetyMarginMs: 30, batchMinShare: 0.25 });
    // The horizon is what lets a replica that loses Redis start its own share soon after.
    expect(rules.horizonMs).toBeGreaterThan(0);
    expect(rules.horizonMs).toBeLessThan(rules.leaseMs);
    expect(rules.memoryMs).toBeGreaterThan(rules.leaseMs);
    expect([rules.weightOf('team-a'), rules.weightOf('team-b'), rules.weightOf('team-c')]).toEqual([3, 0.5, 1]);
  });
});

describe('quotaPerSecond', () => {
  const quotas = config({ CLIENT_RATE_LIMIT: '12', CLIENT_RATE_LIMITS: 'team-a:5,team-b:40' });

  it('gives a client its override', () => {
    expect(quotaPerSecond(quotas, contextFor('team-a'))).toBe(5);
    expect(quotaPerSecond(quotas, contextFor('team-b'))).toBe(40);
  });

  it('gives every other client the default', () => {
    expect(quotaPerSecond(quotas, contextFor('team-c'))).toBe(12);
    expect(quotaPerSecond(quotas, contextFor('constructor'))).toBe(12);
    expect(quotaPerSecond(quotas, contextFor(undefined))).toBe(12);
  });
});
