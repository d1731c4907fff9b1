import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { keySlot } from '../../test/support/redis-cluster.js';
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
      const key = keys.idempotencyRecord('team-a', 'POST /rooms', 'my key {with} braces');
      expect(key).toMatch(/^gw:idem:\{team-a\}:[0-9a-f]{64}$/);
      expect(key).not.toContain('braces');
      expect(keys.idempotencyRecord('team-b', 'POST /rooms', 'k')).not.toBe(keys.idempotencyRecord('team-a', 'POST /rooms', 'k'));
    });

    it('scopes a key to its route, keeping the name POST /rooms records had before', () => {
      const rooms = keys.idempotencyRecord('team-a', 'POST /rooms', 'k');
      expect(rooms).toBe(`gw:idem:{team-a}:${createHash('sha256').update('k').digest('hex')}`);
      expect(keys.idempotencyRecord('team-a', 'POST /rooms/batches', 'k')).not.toBe(rooms);
    });
  });

  describe('on a Redis Cluster, every key one script is given lies in one slot', () => {
    const slotsOf = (names: readonly string[]): Set<number> => new Set(names.map((name) => keySlot(name)));

    it.each([1, 42, 2718281828, 4294967295])("the scheduler's keys of AppId %p", (appId) => {
      const budget = Object.values(keys.outboundBudget(appId));
      expect(budget).toHaveLength(11);
      expect(slotsOf(budget).size).toBe(1);
    });

    it.each(['team-a', 'orders.v2', 'ops_bot-1', 'x'])("a client's quota log, its idempotency records and its batches, for %p", (client) => {
      const names = [keys.clientQuota(client), ...['k1', 'another key', '{braces} in the key'].map((k) => keys.idempotencyRecord(client, 'POST /rooms/batches', k)), ...Object.values(keys.batch(client, 'b-1'))];
      expect(slotsOf(names).size).toBe(1);
    });

    it('whatever REDIS_KEY_PREFIX says (it holds no braces)', () => {
      for (const prefix of ['zim-room-gateway', 'staging:zim-gw', 'a.b_c-d']) {
        const prefixed = new RedisKeys(prefix);
        expect(slotsOf(Object.values(prefixed.outboundBudget(7))).size).toBe(1);
        expect(keySlot(prefixed.outboundBudget(7).slots)).toBe(keySlot(keys.outboundBudget(7).slots));
      }
    });
  });
});
