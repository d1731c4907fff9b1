import { describe, expect, it, jest } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { settledState, until } from '../../test/support/async-probes.js';
import { carriedMembers, failoverReplicas, freshBudget, messages } from '../../test/support/failover-replicas.js';
import { startPrivateRedis } from '../../test/support/redis-server.js';
import { SharedStoreUnavailable } from '../redis/shared-store-unavailable.js';
import type { FailoverRules } from './failover-outbound-rate-limiter.js';
import type { LocalBudgetRules } from './local-outbound-rate-limiter.js';
import { OutboundRateLimitRefusal } from './outbound-rate-limiter.js';
import { RedisOutboundRateLimiter, type SchedulerRules } from './redis-outbound-rate-limiter.js';
import type { SlotWait } from './slot-wait.js';

const BIG_MAX_WAIT = 10 * 60_000;
const ANY_WAIT = { maxWaitMs: BIG_MAX_WAIT };
/** The fleet budget: generous, so shared acquisitions go out at once unless a test says otherwise. */
const SHARED_RULES: SchedulerRules = {
  limit: 100,
  windowMs: 200,
  safetyMarginMs: 0,
  horizonMs: 30,
  slowRoundTripMs: 75,
  leaseMs: 300,
  memoryMs: 5000,
  batchMinShare: 0.1,
  weightOf: () => 1,
};
/**
 * A fleet window of a minute, for the tests that look at calls carried back into the log: the
 * script drops calls older than one window, which can no longer share one with a new call.
 */
const LONG_WINDOW_RULES: SchedulerRules = { ...SHARED_RULES, limit: 1000, windowMs: 60_000 };
const FAILOVER_RULES: FailoverRules = { horizonMs: SHARED_RULES.horizonMs, spanMs: 200, heartbeatMs: 50, slowRoundTripMs: 75 };
/** This replica's share while Redis is down: a long window, so local releases stay recent, 60 ms apart. */
const LOCAL_RULES: LocalBudgetRules = { limit: 1000, windowMs: 60_000, safetyMarginMs: 0 };

const { replica, observer, clients } = failoverReplicas({ shared: SHARED_RULES, local: LOCAL_RULES, failover: FAILOVER_RULES });

// ------------------------------------------------------------------ tests

describe('FailoverOutboundRateLimiter', () => {
  describe('starting up', () => {
    it.each(['local', 'reject'] as const)(
      'is in the fallback mode (%s) until the connection is ready, then shared',
      async (fallback) => {
        const server = await startPrivateRedis();
        const r = replica({ server, fallback });
        expect(r.redis.status).not.toBe('ready');
        expect(r.limiter.mode).toBe(fallback);

        await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
        expect(r.modes).toEqual(['shared']);
        expect(messages(r.log)).toEqual([expect.stringContaining('Outbound limiter mode: shared')]);
        expect(r.warn).not.toHaveBeenCalled();

        await r.limiter.acquire(ANY_WAIT);
        expect(await observer(server).zcard(r.budget.slots)).toBe(1);
        expect(r.localCalls).toHaveLength(0);
      },
    );

    it('before the connection is ready, serves calls from its share of the assumed fleet (policy local)', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, fallback: 'local' });
      const acquisition = r.limiter.acquire(ANY_WAIT);
      expect(await settledState(acquisition)).toBe('resolved');
      expect(r.sizes).toEqual([3]);
    });

    it('before the connection is ready, refuses with 503 (policy reject)', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, fallback: 'reject' });
      const acquisition = r.limiter.acquire(ANY_WAIT);
      expect(await settledState(acquisition)).toBe('rejected');
      await expect(acquisition).rejects.toBeInstanceOf(SharedStoreUnavailable);
      expect(r.localCalls).toHaveLength(0);
    });
  });

  describe('when Redis stops (policy local)', () => {
    it('switches to local once, and sends nothing of its own before its lease lapsed and the fleet’s calls left the window', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await r.limiter.acquire(ANY_WAIT);
      await until(() => r.shared.fleetView() !== undefined, 'a fleet view');

      await server.stop();
      const stoppedAt = performance.now();
      await r.limiter.acquire(ANY_WAIT);
      await until(() => r.limiter.mode === 'local', 'the limiter is local');
      for (let i = 0; i < 4; i++) await r.limiter.acquire(ANY_WAIT);

      expect(r.localCalls).toHaveLength(5);
      expect(r.modes).toEqual(['shared', 'local']);
      expect(r.warn).toHaveBeenCalledTimes(1);
      expect(messages(r.warn)[0]).toContain('Outbound limiter mode: local');
      // The share is the fleet Redis last counted (this replica alone), not the assumed 3.
      expect(r.sizes).toEqual([3, 1]);
      // The lease was renewed at most one heartbeat before the stop: the first local call waits
      // out the rest of it, the grant horizon and one whole window.
      const { leaseMs, horizonMs } = SHARED_RULES;
      expect(r.localCalls[0]! - stoppedAt).toBeGreaterThan(leaseMs - FAILOVER_RULES.heartbeatMs + horizonMs + FAILOVER_RULES.spanMs - 20);
      expect(r.limiter.leaseLapses()).toBe(1);
    });

    it('comes back to shared by itself and carries its recent local calls into the log, once', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, sharedRules: LONG_WINDOW_RULES });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await r.limiter.acquire(ANY_WAIT);

      await server.stop();
      await until(() => r.limiter.mode === 'local', 'the limiter is local');
      await r.limiter.acquire(ANY_WAIT);
      await r.limiter.acquire(ANY_WAIT);
      expect(r.localCalls).toHaveLength(2);

      await server.restart(); // empty data: the log is gone
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared again');
      expect(r.modes).toEqual(['shared', 'local', 'shared']);
      const look = observer(server);
      await until(async () => (await carriedMembers(look, r.budget)).length > 0, 'the local calls carried in');
      expect(await carriedMembers(look, r.budget)).toHaveLength(2);
      expect(messages(r.log)).toContainEqual(expect.stringContaining('Outbound limiter hand-over'));

      await r.limiter.acquire(ANY_WAIT);
      await r.limiter.acquire(ANY_WAIT);
      expect(await carriedMembers(look, r.budget)).toHaveLength(2);
      expect(r.localCalls).toHaveLength(2);
      expect(r.warn).toHaveBeenCalledTimes(1);
    });

    it('a replica that started while Redis was down carries its local calls when Redis comes back', async () => {
      const server = await startPrivateRedis();
      await server.stop();
      const r = replica({ server, sharedRules: LONG_WINDOW_RULES });
      await r.limiter.acquire(ANY_WAIT);
      await r.limiter.acquire(ANY_WAIT);
      expect(r.localCalls).toHaveLength(2);

      await server.restart();
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      const look = observer(server);
      await until(async () => (await carriedMembers(look, r.budget)).length === 2, 'the local calls carried in');
    });

    it('cuts its own share, and tells the policy to cut client quotas, for the fleet Redis last counted', async () => {
      const server = await startPrivateRedis();
      const budget = freshBudget();
      const r = replica({ server, budget });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      // Before any count: RATE_LIMIT_REPLICAS (3).
      expect(r.policy.fleetSize).toBe(3);
      const other = new RedisOutboundRateLimiter(clients.plain(server.url), budget, SHARED_RULES, 'the-other');
      await other.renew();
      await until(() => r.shared.fleetView()?.active === 2, 'both members seen');

      await server.stop();
      await until(() => r.limiter.mode === 'local', 'the limiter is local');
      expect(r.sizes.at(-1)).toBe(2);
      expect(r.policy.fleetSize).toBe(2);
      expect(r.policy.ownShareOf(10)).toBe(5);
    });

    it('coming back to a Redis that lost its data, leaves room for the members it last saw', async () => {
      const server = await startPrivateRedis();
      const budget = freshBudget();
      const r = replica({ server, budget });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      // Another member of the fleet, which stays away after the outage.
      const other = new RedisOutboundRateLimiter(clients.plain(server.url), budget, SHARED_RULES, 'the-other');
      await other.renew();
      await until(() => r.shared.fleetView()?.active === 2, 'both members seen');

      await server.stop();
      await until(() => r.limiter.mode === 'local', 'the limiter is local');
      await server.restart();
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared again');
      await until(() => r.shared.fleetView()?.lapsedMembers.includes('the-other') === true, 'the other re-asserted');
      expect(await observer(server).zscore(budget.members, 'the-other')).not.toBeNull();
    });
  });

  describe('when Redis comes back while callers wait for a local slot', () => {
    it('hands the local slot back and takes a shared one, so no local call clashes with the shared log', async () => {
      const server = await startPrivateRedis();
      // One local call a minute: the second caller would wait about a minute.
      const r = replica({ server, sharedRules: LONG_WINDOW_RULES, localRules: { limit: 1, windowMs: 60_000, safetyMarginMs: 0 } });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await server.stop();
      await until(() => r.limiter.mode === 'local', 'the limiter is local');

      await r.limiter.acquire(ANY_WAIT); // the minute's one local call
      const waiting = r.limiter.acquire(ANY_WAIT);
      expect(await settledState(waiting)).toBe('pending');

      await server.restart();
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared again');
      await expect(waiting).resolves.toBeUndefined();
      expect(r.localCalls).toHaveLength(1);
      const members = await observer(server).zrange(r.budget.slots, '0', '-1');
      expect(members.filter((m) => m.includes(':carried:'))).toHaveLength(1);
      expect(members.filter((m) => !m.includes(':carried:'))).toHaveLength(1);
    });

    it('still ends the wait of a caller that hangs up, with an AbortError', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, localRules: { limit: 1, windowMs: 60_000, safetyMarginMs: 0 } });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await server.stop();
      await until(() => r.limiter.mode === 'local', 'the limiter is local');
      await r.limiter.acquire(ANY_WAIT);

      const caller = new AbortController();
      const waiting = r.limiter.acquire({ ...ANY_WAIT, signal: caller.signal });
      expect(await settledState(waiting)).toBe('pending');
      caller.abort(new Error('caller went away'));
      await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
      await server.restart();
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared again');
      // It did not go on to take a shared slot.
      expect((await observer(server).zrange(r.budget.slots, '0', '-1')).filter((m) => !m.includes(':carried:'))).toEqual([]);
    });
  });

  describe('when Redis hangs (paused server, command timeout)', () => {
    it('falls back on the timed-out request, warns once, and is shared again as soon as Redis answers', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, commandTimeoutMs: 200, sharedRules: LONG_WINDOW_RULES });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');

      server.pause();
      await r.limiter.acquire(ANY_WAIT);
      expect(r.limiter.mode).toBe('local');
      expect(r.localCalls).toHaveLength(1);
      expect(r.warn).toHaveBeenCalledTimes(1);
      expect(messages(r.warn)[0]).toMatch(/Outbound limiter mode: local .*timed out/i);

      // The connection still looks ready, yet calls do not wait for Redis again.
      const request = jest.spyOn(r.shared, 'request');
      for (let i = 0; i < 3; i++) await r.limiter.acquire(ANY_WAIT);
      expect(request).not.toHaveBeenCalled();

      // The lease heartbeat finds Redis back, before any pause is over, and the local calls go in.
      server.resume();
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared again');
      expect(r.modes).toEqual(['shared', 'local', 'shared']);
      expect(r.warn).toHaveBeenCalledTimes(1);
      const look = observer(server);
      await until(async () => (await carriedMembers(look, r.budget)).length === 4, 'the local calls carried in');
    });
  });

  describe('when Redis goes away while a caller that woke too late takes a new slot', () => {
    it('serves that caller from its own share instead of failing it', async () => {
      const server = await startPrivateRedis();
      let late = false;
      // The shared timer fires 60 ms after the slot (a stall, beyond the 40 ms tolerance: the
      // margin), and Redis is gone by then.
      const lateAndRedisGone: SlotWait = async (ms) => {
        await sleep(ms);
        if (!late) return;
        await sleep(60);
        await server.stop();
        await until(() => connection.status !== 'ready', 'the client noticed');
      };
      // Slots 208 ms apart: the second caller has a wait of its own to oversleep.
      const r = replica({ server, sharedRules: { ...SHARED_RULES, limit: 5, windowMs: 1000, safetyMarginMs: 40 }, sharedWait: lateAndRedisGone });
      const connection = r.redis;
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await r.limiter.acquire(ANY_WAIT);
      late = true;
      // The next slot is one spacing away: this caller waits, wakes late, and finds no Redis.
      await r.limiter.acquire(ANY_WAIT);

      expect(r.shared.lateSlots()).toBe(1);
      // The local share's timers may overshoot on a busy machine too (its tolerance is 2 ms).
      expect(r.limiter.lateSlots()).toBe(1 + r.locals.reduce((sum, local) => sum + local.lateSlots(), 0));
      expect(r.localCalls).toHaveLength(1);
      expect(r.limiter.mode).toBe('local');
    });
  });

  describe('policy reject', () => {
    it('refuses with 503 while Redis is down and returns to shared by itself', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, fallback: 'reject' });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');

      await server.stop();
      await until(() => r.limiter.mode === 'reject', 'the limiter rejects');
      expect(r.warn).toHaveBeenCalledTimes(1);
      expect(messages(r.warn)[0]).toContain('Outbound limiter mode: reject');

      for (let i = 0; i < 3; i++) {
        const acquisition = r.limiter.acquire(ANY_WAIT);
        expect(await settledState(acquisition)).toBe('rejected');
        const error = await acquisition.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(SharedStoreUnavailable);
        expect((error as SharedStoreUnavailable).status).toBe(503);
        expect((error as SharedStoreUnavailable).details.retryAfterSeconds).toBe(1);
      }
      expect(r.warn).toHaveBeenCalledTimes(1);
      expect(r.localCalls).toHaveLength(0);

      await server.restart();
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared again');
      await r.limiter.acquire(ANY_WAIT);
      const look = observer(server);
      expect(await look.zcard(r.budget.slots)).toBe(1);
      expect(await carriedMembers(look, r.budget)).toEqual([]);
      expect(r.modes).toEqual(['shared', 'reject', 'shared']);
    });
  });

  describe('errors that are not Redis trouble', () => {
    it('passes a refusal of the scheduler on as is, staying shared', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, sharedRules: { ...SHARED_RULES, limit: 1, windowMs: 60_000 } });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await r.limiter.acquire(ANY_WAIT);

      const error = await r.limiter.acquire({ maxWaitMs: 1000 }).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(OutboundRateLimitRefusal);
      expect((error as OutboundRateLimitRefusal).status).toBe(429);
      expect((error as OutboundRateLimitRefusal).waitMs).toBeGreaterThan(1000);
      expect(r.limiter.mode).toBe('shared');
      expect(r.localCalls).toHaveLength(0);
      expect(r.warn).not.toHaveBeenCalled();
    });

    it('passes any other failure of the shared limiter on, without switching mode', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      const failure = new TypeError('a bug, not an outage');
      jest.spyOn(r.shared, 'request').mockRejectedValueOnce(failure);

      await expect(r.limiter.acquire(ANY_WAIT)).rejects.toBe(failure);
      expect(r.limiter.mode).toBe('shared');
      expect(r.localCalls).toHaveLength(0);
    });

    it('refuses an already aborted caller, touching neither limiter', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      const request = jest.spyOn(r.shared, 'request');
      const reason = new Error('gone');

      await expect(r.limiter.acquire({ ...ANY_WAIT, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      expect(request).not.toHaveBeenCalled();
      expect(r.localCalls).toHaveLength(0);
    });
  });

  describe('a graceful shutdown', () => {
    it('leaves the fleet, so that nobody leaves room for this replica afterwards', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await until(async () => (await observer(server).zcard(r.budget.members)) === 1, 'the lease taken');
      await r.limiter.beforeApplicationShutdown();
      expect(await observer(server).zcard(r.budget.members)).toBe(0);
    });
  });
});
