import { describe, expect, it } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import { loadConfig } from '../app-config.js';
import { quotaPerSecond } from './client-quota-limit.js';
import { handoverRules, localShareRules, outboundRules } from './outbound-rules.js';

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
  ])('with a budget of %i and %i replicas allows %i per window', (qps, replicas, share) => {
    const rules = localShareRules(config({ ZEGO_QPS_LIMIT: String(qps), RATE_LIMIT_REPLICAS: String(replicas) }));
    expect(rules).toEqual({ limit: share, windowMs: 1000, safetyMarginMs: 30 });
    // The assumed fleet together stays within the budget.
    expect(rules.limit * replicas).toBeLessThanOrEqual(qps);
  });

  it('with more replicas than calls per window, gives each one call per proportionally longer window', () => {
    const rules = localShareRules(config({ ZEGO_QPS_LIMIT: '20', RATE_LIMIT_REPLICAS: '50' }));
    expect(rules).toEqual({ limit: 1, windowMs: 3000, safetyMarginMs: 30 });
    // 50 replicas, one call each per 3 s: at most 16.7 per second.
    expect((50 * 1000) / rules.windowMs).toBeLessThanOrEqual(20);
  });
});

describe('handoverRules: the shared log after Redis was unreachable', () => {
  it.each([
    // replicas, hand-over limit: the budget less every other replica's share
    [3, 8],
    [1, 20],
    [2, 10],
    [20, 1],
    // With more replicas than calls per window no room can be left: one call per window.
    [50, 1],
  ])('with %i replicas leaves %i per window for two windows', (replicas, limit) => {
    const rules = handoverRules(config({ ZEGO_QPS_LIMIT: '20', RATE_LIMIT_REPLICAS: String(replicas) }));
    expect(rules).toEqual({ limit, durationMs: 2 * 1030 });
  });

  it('leaves the others exactly what their shares may send in one window', () => {
    const env = { ZEGO_QPS_LIMIT: '21', RATE_LIMIT_REPLICAS: '4' };
    const share = localShareRules(config(env));
    expect(handoverRules(config(env)).limit + 3 * share.limit).toBe(21);
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
