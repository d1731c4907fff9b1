import { describe, expect, it } from '@jest/globals';
import { RedisKeys } from './redis-keys.js';

describe('RedisKeys', () => {
  const keys = new RedisKeys('gw');

  it('keeps the outbound log and its hand-over marker under one hash tag per AppId', () => {
    expect(keys.outboundSlots(42)).toBe('gw:{outbound:42}:slots');
    expect(keys.outboundHandover(42)).toBe('gw:{outbound:42}:slots:handover');
    expect(keys.outboundSlots(43)).not.toBe(keys.outboundSlots(42));
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
