import { afterAll, afterEach, describe, expect, it, jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoggerService } from '@nestjs/common';
import { Redis } from 'ioredis';
import { settledState, until } from '../../test/support/async-probes.js';
import { RedisClients } from '../../test/support/redis-clients.js';
import { startPrivateRedis, stopAllRedis, type TestRedis } from '../../test/support/redis-server.js';
import { RedisDownPolicy, type SharedStoreMode } from '../redis/redis-down-policy.js';
import { SharedStoreUnavailable } from '../redis/shared-store-unavailable.js';
import type { RedisDownFallback } from '../redis/redis.settings.js';
import { FailoverOutboundRateLimiter } from './failover-outbound-rate-limiter.js';
import { LocalOutboundRateLimiter } from './local-outbound-rate-limiter.js';
import { OutboundRateLimitRefusal } from './outbound-rate-limiter.js';
import { RedisOutboundRateLimiter, type OutboundBudgetKeys } from './redis-outbound-rate-limiter.js';
import type { SlotRules } from './slot-schedule.js';

const BIG_MAX_WAIT = 10 * 60_000;
const ANY_WAIT = { maxWaitMs: BIG_MAX_WAIT };
/** The fleet budget: generous, so shared acquisitions go out at once unless a test says otherwise. */
const SHARED_RULES: SlotRules = { limit: 100, windowMs: 1000, safetyMarginMs: 0 };
/** This replica's share while Redis is down: a long window, so local releases stay recent. */
const LOCAL_RULES: SlotRules = { limit: 5, windowMs: 60_000, safetyMarginMs: 0 };

// ------------------------------------------------------------------ helpers

const clients = new RedisClients();

function fakeLogger() {
  const log = jest.fn<(message: unknown, ...rest: unknown[]) => void>();
  const warn = jest.fn<(message: unknown, ...rest: unknown[]) => void>();
  const error = jest.fn<(message: unknown, ...rest: unknown[]) => void>();
  const logger: LoggerService = { log, warn, error };
  return { logger, log, warn, error };
}

interface Setup {
  server: TestRedis;
  policy?: RedisDownFallback;
  sharedRules?: SlotRules;
  commandTimeoutMs?: number;
  /** The shared limiter's wait for its slot (default: none). */
  sharedWait?: (ms: number, signal?: AbortSignal) => Promise<unknown>;
}

/** The budget whose slot log is `slots`, with its hand-over marker beside it (as RedisKeys names them). */
const budget = (slots: string): OutboundBudgetKeys => ({ slots, handover: `${slots}:handover` });

/** The failover as the gateway wires it: its Redis-down policy on the same connection, logging to `logger`. */
function failover(
  shared: RedisOutboundRateLimiter,
  redis: Redis,
  local: LocalOutboundRateLimiter,
  { fallback = 'local', logger = fakeLogger().logger, now }: { fallback?: RedisDownFallback; logger?: LoggerService; now?: () => number } = {},
) {
  const policy = new RedisDownPolicy(redis, { fallback, assumedReplicas: 3 }, logger, now);
  return { policy, limiter: new FailoverOutboundRateLimiter(shared, local, policy, logger) };
}

/** The policy's clock (it only times the probe interval): stands still unless a test moves it. */
class ManualClock {
  time = 0;
  readonly now = (): number => this.time;
}

/**
 * One replica as the gateway wires it, on a gateway-style connection to the private server. Both
 * limiters wait for nothing (their waits are injected), so every acquisition settles at once and
 * the tests look at the logs instead.
 */
function replica({ server, policy = 'local', sharedRules = SHARED_RULES, commandTimeoutMs = 250, sharedWait }: Setup) {
  const redis = clients.gatewayLike(server, commandTimeoutMs);
  const key = `test:{outbound:${randomUUID()}}:slots`;
  const noWait = async () => undefined;
  const shared = new RedisOutboundRateLimiter(redis, budget(key), sharedRules, undefined, sharedWait ?? noWait);
  const local = new LocalOutboundRateLimiter(LOCAL_RULES, undefined, noWait);
  const localAcquire = jest.spyOn(local, 'acquire');
  const { logger, log, warn } = fakeLogger();
  const clock = new ManualClock();
  const { limiter, policy: redisDown } = failover(shared, redis, local, { fallback: policy, logger, now: clock.now });
  const modes: SharedStoreMode[] = [];
  redisDown.onModeChange((mode) => modes.push(mode));
  return { redis, key, shared, local, localAcquire, limiter, modes, log, warn, clock };
}

/** A separate plain client to look at the log with. */
function observer(server: TestRedis): Redis {
  return clients.plain(server.url);
}

async function carriedMembers(redis: Redis, key: string): Promise<string[]> {
  return (await redis.zrange(key, '0', '-1')).filter((member) => member.includes(':carried:'));
}

const messages = (mock: jest.Mock<(message: unknown, ...rest: unknown[]) => void>): string[] =>
  mock.mock.calls.map(([message]) => String(message));

afterEach(() => clients.closeAll());
afterAll(stopAllRedis);

// ------------------------------------------------------------------ tests

describe('FailoverOutboundRateLimiter', () => {
  describe('starting up', () => {
    it.each(['local', 'reject'] as const)(
      'is in the fallback mode (%s) until the connection is ready, then shared',
      async (policy) => {
        const server = await startPrivateRedis();
        const r = replica({ server, policy });
        expect(r.redis.status).not.toBe('ready');
        expect(r.limiter.mode).toBe(policy);

        await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
        expect(r.modes).toEqual(['shared']);
        expect(messages(r.log)).toEqual([expect.stringContaining('Outbound limiter mode: shared')]);
        expect(r.warn).not.toHaveBeenCalled();

        await r.limiter.acquire(ANY_WAIT);
        expect(await observer(server).zcard(r.key)).toBe(1);
        expect(r.localAcquire).not.toHaveBeenCalled();
      },
    );

    it('before the connection is ready, serves calls from the local share (policy local)', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, policy: 'local' });
      const acquisition = r.limiter.acquire(ANY_WAIT);
      expect(await settledState(acquisition)).toBe('resolved');
      expect(r.localAcquire).toHaveBeenCalledTimes(1);
    });

    it('before the connection is ready, refuses with 503 (policy reject)', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, policy: 'reject' });
      const acquisition = r.limiter.acquire(ANY_WAIT);
      expect(await settledState(acquisition)).toBe('rejected');
      await expect(acquisition).rejects.toBeInstanceOf(SharedStoreUnavailable);
      expect(r.localAcquire).not.toHaveBeenCalled();
    });
  });

  describe('when Redis stops (policy local)', () => {
    it('switches to local, warns once, and serves every call from the local share without hanging', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await r.limiter.acquire(ANY_WAIT);
      const lastSharedSlot = r.shared.lastKnownSlot();
      expect(lastSharedSlot).toBeDefined();

      await server.stop();
      // The closed connection alone switches the mode (or the first failed reservation does).
      const first = r.limiter.acquire(ANY_WAIT);
      expect(await settledState(first)).toBe('resolved');
      await until(() => r.limiter.mode === 'local', 'the limiter is local');

      for (let i = 0; i < 4; i++) {
        const next = r.limiter.acquire(ANY_WAIT);
        expect(await settledState(next)).toBe('resolved');
      }
      expect(r.localAcquire).toHaveBeenCalledTimes(5);
      expect(r.modes).toEqual(['shared', 'local']);
      expect(r.warn).toHaveBeenCalledTimes(1);
      expect(messages(r.warn)[0]).toContain('Outbound limiter mode: local');
      // Local slots follow the shared log's newest slot: the first one is a whole window after it.
      const [firstLocal] = r.local.recentOffsets();
      expect(firstLocal).toBeGreaterThan(0);
    });

    it('comes back to shared by itself and carries the recent local releases into the log', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await r.limiter.acquire(ANY_WAIT);

      await server.stop();
      await until(() => r.limiter.mode === 'local', 'the limiter is local');
      await r.limiter.acquire(ANY_WAIT);
      await r.limiter.acquire(ANY_WAIT);
      expect(r.localAcquire).toHaveBeenCalledTimes(2);

      await server.restart(); // empty data: the log is gone
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared again');
      expect(r.modes).toEqual(['shared', 'local', 'shared']);
      expect(messages(r.log)).toEqual([
        expect.stringContaining('Outbound limiter mode: shared'),
        expect.stringContaining('Outbound limiter mode: shared'),
      ]);
      const recentLocal = r.local.recentOffsets().length;
      expect(recentLocal).toBe(2);

      await r.limiter.acquire(ANY_WAIT);
      const look = observer(server);
      expect(await carriedMembers(look, r.key)).toHaveLength(recentLocal);
      expect(await look.zcard(r.key)).toBe(recentLocal + 1);

      // Carried once only.
      await r.limiter.acquire(ANY_WAIT);
      expect(await carriedMembers(look, r.key)).toHaveLength(recentLocal);
      expect(await look.zcard(r.key)).toBe(recentLocal + 2);
      expect(r.localAcquire).toHaveBeenCalledTimes(2);
      expect(r.warn).toHaveBeenCalledTimes(1);
    });

    it('a replica that started while Redis was down carries its local releases when Redis comes back', async () => {
      const server = await startPrivateRedis();
      await server.stop();
      const r = replica({ server });
      await r.limiter.acquire(ANY_WAIT);
      await r.limiter.acquire(ANY_WAIT);
      expect(r.localAcquire).toHaveBeenCalledTimes(2);

      await server.restart();
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await r.limiter.acquire(ANY_WAIT);

      expect(await carriedMembers(observer(server), r.key)).toHaveLength(2);
    });
  });

  describe('the hand-over when Redis comes back', () => {
    const withHandover = { ...SHARED_RULES, handover: { limit: 10, durationMs: 60_000 } };
    const marker = (r: { key: string }) => `${r.key}:handover`;

    it('is started once, by the first shared reservation after an outage, and logged', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, sharedRules: withHandover });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await r.limiter.acquire(ANY_WAIT);
      // A replica that started with Redis there has nothing to hand over.
      expect(await observer(server).exists(marker(r))).toBe(0);

      // Even without calls of its own while Redis was away: the other replicas may have sent theirs.
      await server.stop();
      await until(() => r.limiter.mode === 'local', 'the limiter is local');
      await server.restart();
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared again');
      await r.limiter.acquire(ANY_WAIT);
      expect(r.localAcquire).not.toHaveBeenCalled();

      const look = observer(server);
      expect(await look.pttl(marker(r))).toBeGreaterThan(59_000);
      expect(messages(r.log)).toContainEqual(expect.stringContaining('Outbound limiter hand-over'));
      await look.del(marker(r));
      await r.limiter.acquire(ANY_WAIT);
      expect(await look.exists(marker(r))).toBe(0);
    });

    it('is started by a replica that began while Redis was down and sent calls on its own share', async () => {
      const server = await startPrivateRedis();
      await server.stop();
      const r = replica({ server, sharedRules: withHandover });
      await r.limiter.acquire(ANY_WAIT);
      await server.restart();
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await r.limiter.acquire(ANY_WAIT);
      expect(await observer(server).exists(marker(r))).toBe(1);
    });

    it('is not started under policy reject, where no replica sends calls of its own', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, policy: 'reject', sharedRules: withHandover });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await server.stop();
      await until(() => r.limiter.mode === 'reject', 'the limiter rejects');
      await expect(r.limiter.acquire(ANY_WAIT)).rejects.toBeInstanceOf(SharedStoreUnavailable);
      await server.restart();
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared again');
      await r.limiter.acquire(ANY_WAIT);
      expect(await observer(server).exists(marker(r))).toBe(0);
    });
  });

  describe('when Redis comes back while callers wait for a local slot', () => {
    it('hands the local slot back and takes a shared one, so no local call clashes with the shared log', async () => {
      const server = await startPrivateRedis();
      const redis = clients.gatewayLike(server);
      const key = `test:{outbound:${randomUUID()}}:slots`;
      const shared = new RedisOutboundRateLimiter(redis, budget(key), SHARED_RULES);
      // One local call per minute, waited for with real timers: the second caller would wait ~60 s.
      const local = new LocalOutboundRateLimiter({ limit: 1, windowMs: 60_000, safetyMarginMs: 0 });
      const { limiter } = failover(shared, redis, local);
      await until(() => limiter.mode === 'shared', 'the limiter is shared');
      await server.stop();
      await until(() => limiter.mode === 'local', 'the limiter is local');

      await limiter.acquire(ANY_WAIT); // the minute's one local call, at once
      const waiting = limiter.acquire(ANY_WAIT);
      expect(await settledState(waiting)).toBe('pending');

      await server.restart();
      await until(() => limiter.mode === 'shared', 'the limiter is shared again');
      await expect(waiting).resolves.toBeUndefined();
      // The waiter took a shared slot, and the local call made without Redis was carried in.
      const members = await observer(server).zrange(key, '0', '-1');
      expect(members.filter((m) => m.includes(':carried:'))).toHaveLength(1);
      expect(members.filter((m) => !m.includes(':carried:'))).toHaveLength(1);
      expect(local.recentOffsets()).toHaveLength(1);
    });

    it('still ends the wait of a caller that hangs up, with its own reason', async () => {
      const server = await startPrivateRedis();
      const redis = clients.gatewayLike(server);
      const key = `test:{outbound:${randomUUID()}}:slots`;
      const shared = new RedisOutboundRateLimiter(redis, budget(key), SHARED_RULES);
      const local = new LocalOutboundRateLimiter({ limit: 1, windowMs: 60_000, safetyMarginMs: 0 });
      const { limiter } = failover(shared, redis, local);
      await until(() => limiter.mode === 'shared', 'the limiter is shared');
      await server.stop();
      await until(() => limiter.mode === 'local', 'the limiter is local');
      await limiter.acquire(ANY_WAIT);

      const caller = new AbortController();
      const waiting = limiter.acquire({ ...ANY_WAIT, signal: caller.signal });
      expect(await settledState(waiting)).toBe('pending');
      caller.abort(new Error('caller went away'));
      await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
      // Its local slot is free again, and it did not go on to take a shared one.
      expect(local.recentOffsets()).toHaveLength(1);
      await server.restart();
      await until(() => limiter.mode === 'shared', 'the limiter is shared again');
      expect(await observer(server).zcard(key)).toBe(0);
    });
  });

  describe('when Redis hangs (paused server, command timeout)', () => {
    it('falls back on the timed-out reservation, warns once, and probes Redis again later', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, commandTimeoutMs: 200 });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');

      server.pause();
      await r.limiter.acquire(ANY_WAIT);
      expect(r.limiter.mode).toBe('local');
      expect(r.localAcquire).toHaveBeenCalledTimes(1);
      expect(r.warn).toHaveBeenCalledTimes(1);
      expect(messages(r.warn)[0]).toMatch(/Outbound limiter mode: local .*timed out/i);

      // The connection still looks ready, yet the next calls do not wait for Redis again.
      for (let i = 0; i < 3; i++) {
        const next = r.limiter.acquire(ANY_WAIT);
        expect(await settledState(next)).toBe('resolved');
      }
      server.resume();
      const reserve = jest.spyOn(r.shared, 'reserve');

      // Nothing announces the recovery: within the probe interval calls stay local...
      r.clock.time = 999;
      await r.limiter.acquire(ANY_WAIT);
      expect(reserve).not.toHaveBeenCalled();
      expect(r.limiter.mode).toBe('local');
      expect(r.localAcquire).toHaveBeenCalledTimes(5);
      const recentLocal = r.local.recentOffsets().length;
      expect(recentLocal).toBe(5);

      // ...and once it is over, an acquisition probes Redis, finds it, and carries the local releases.
      r.clock.time = 1000;
      await r.limiter.acquire(ANY_WAIT);
      expect(reserve).toHaveBeenCalledTimes(1);
      expect(r.limiter.mode).toBe('shared');
      expect(r.localAcquire).toHaveBeenCalledTimes(5);
      expect(r.modes).toEqual(['shared', 'local', 'shared']);
      expect(r.warn).toHaveBeenCalledTimes(1);
      expect(messages(r.log).at(-1)).toContain('Outbound limiter mode: shared');
      expect(await carriedMembers(observer(server), r.key)).toHaveLength(recentLocal);
    });
  });

  describe('when Redis goes away while a caller that woke too late takes a new slot', () => {
    it('serves that caller from the local share instead of failing it', async () => {
      const server = await startPrivateRedis();
      let connection: Redis | undefined;
      // The shared timer fires 30 ms after the slot (a stall, beyond the 20 ms tolerance), and
      // Redis is gone by then.
      const lateAndRedisGone = async (ms: number) => {
        await sleep(ms + 30);
        await server.stop();
        await until(() => connection?.status !== 'ready', 'the client noticed');
      };
      const r = replica({
        server,
        sharedRules: { limit: 100, windowMs: 1000, safetyMarginMs: 40 },
        sharedWait: lateAndRedisGone,
      });
      connection = r.redis;
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await r.limiter.acquire(ANY_WAIT);

      // The next slot is one spacing away: this caller waits, wakes late, and finds no Redis.
      await r.limiter.acquire(ANY_WAIT);

      expect(r.shared.lateSlots()).toBe(1);
      expect(r.limiter.lateSlots()).toBe(1);
      expect(r.localAcquire).toHaveBeenCalledTimes(1);
      expect(r.limiter.mode).toBe('local');
    });
  });

  describe('policy reject', () => {
    it('refuses with 503 while Redis is down and returns to shared by itself', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, policy: 'reject' });
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
      expect(r.localAcquire).not.toHaveBeenCalled();

      await server.restart();
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared again');
      await r.limiter.acquire(ANY_WAIT);
      const look = observer(server);
      expect(await look.zcard(r.key)).toBe(1);
      expect(await carriedMembers(look, r.key)).toEqual([]);
      expect(r.modes).toEqual(['shared', 'reject', 'shared']);
    });
  });

  describe('errors that are not Redis trouble', () => {
    it('passes an OutboundRateLimitRefusal from the shared log on as is, staying shared', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server, sharedRules: { limit: 1, windowMs: 60_000, safetyMarginMs: 0 } });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      await r.limiter.acquire(ANY_WAIT);

      const error = await r.limiter.acquire({ maxWaitMs: 1000 }).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(OutboundRateLimitRefusal);
      expect((error as OutboundRateLimitRefusal).status).toBe(429);
      expect((error as OutboundRateLimitRefusal).waitMs).toBeGreaterThan(1000);
      expect(r.limiter.mode).toBe('shared');
      expect(r.localAcquire).not.toHaveBeenCalled();
      expect(r.warn).not.toHaveBeenCalled();
    });

    it('passes any other failure of the shared limiter on, without switching mode', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      const failure = new TypeError('a bug, not an outage');
      jest.spyOn(r.shared, 'reserve').mockRejectedValueOnce(failure);

      await expect(r.limiter.acquire(ANY_WAIT)).rejects.toBe(failure);
      expect(r.limiter.mode).toBe('shared');
      expect(r.localAcquire).not.toHaveBeenCalled();
    });

    it('refuses an already aborted caller with its reason, touching neither limiter', async () => {
      const server = await startPrivateRedis();
      const r = replica({ server });
      await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
      const reserve = jest.spyOn(r.shared, 'reserve');
      const reason = new Error('gone');

      await expect(r.limiter.acquire({ ...ANY_WAIT, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      expect(reserve).not.toHaveBeenCalled();
      expect(r.localAcquire).not.toHaveBeenCalled();
    });
  });
});
