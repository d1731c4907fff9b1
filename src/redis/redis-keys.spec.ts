import { describe, expect, it } from '@jest/globals';
import { RedisKeys } from './redis-keys.js';

describe('RedisKeys', () => {
  const keys = new RedisKeys('gw');

  it("keeps every key of an outbound budget's scheduler under one hash tag per AppId", () => {
    const budget = keys.outboundBudget(42);
    expect(budget.slots).toBe('gw:{outbound:42}:slots');
    for (const key of Object.values(budget)) expect(key).toMatch(/^gw:\{outbound:42\}:[a-z:]+$/);
    expect(new Set(Object.values(budget)).size).toBe(Object.keys(budget).length);
    expect(keys.outboundBudget(43).slots).not.toBe(budget.slots);
  });

  it('gives each client its own hash tag for quotas', () => {
    expect(keys.clientQuota('team-a')).toBe('gw:quota:{team-a}');
  });

  describe('idempotencyRecord', () => {
    it('puts the client in the hash tag and only a digest of the key in the name', () => {
      const key = keys.idempotencyRecord('team-a', 'my key {with} braces');
      expect(key).toMatch(/^gw:idem:\{team-a\}:[0-9a-f]{64}$/);
      expect(key).not.toContain('braces');
      expect(keys.idempotencyRecord('team-b', 'k')).not.toBe(keys.idempotencyRecord('team-a', 'k'));
    });
  });
});
