/**
 * Replicas of the outbound limiter as the gateway wires them (the fleet's scheduler, a local share,
 * the Redis-down policy, the failover between them) on real Redis connections, for the limiter's
 * redis-specs. `failoverReplicas(rules)` registers the cleanup itself (limiters leave, clients
 * close, private servers stop) and returns the builder:
 *
 *   const { replica, observer } = failoverReplicas({ shared: SHARED_RULES, local: LOCAL_RULES, failover: FAILOVER_RULES });
 *   const r = replica({ server });
 *   await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
 *
 * A replica may reach its Redis through another address (`via`: a delaying proxy in front of the
 * server), and records what it did: its local calls, the shares it was cut, the policy's modes and
 * the budget's mode changes, and what it logged.
 */
import { afterAll, afterEach, jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { LoggerService } from '@nestjs/common';
import type { RedisClient } from '../../src/redis/redis-connection.js';
import { RedisDownPolicy, type SharedStoreMode } from '../../src/redis/redis-down-policy.js';
import { RedisKeys, type OutboundBudgetKeys } from '../../src/redis/redis-keys.js';
import type { RedisDownFallback } from '../../src/redis/redis.settings.js';
import { FailoverOutboundRateLimiter, type FailoverRules } from '../../src/rate-limit/failover-outbound-rate-limiter.js';
import { LocalOutboundRateLimiter, type LocalBudgetRules } from '../../src/rate-limit/local-outbound-rate-limiter.js';
import type { BudgetModeChange } from '../../src/rate-limit/outbound-rate-limiter.js';
import { RedisOutboundRateLimiter, type SchedulerRules } from '../../src/rate-limit/redis-outbound-rate-limiter.js';
import type { SlotWait } from '../../src/rate-limit/slot-wait.js';
import { RedisClients } from './redis-clients.js';
import { stopAllRedis, type TestRedis } from './redis-server.js';

type LogMock = jest.Mock<(message: unknown, ...rest: unknown[]) => void>;

/** What each logged message said, in order. */
export const messages = (mock: LogMock): string[] => mock.mock.calls.map(([message]) => String(message));

/** The policy's clock (it only times the probe pause): stands still unless a test moves it. */
export class ManualClock {
  time = 0;
  readonly now = (): number => this.time;
}

/** A budget of its own for each test. */
export const freshBudget = (): OutboundBudgetKeys => new RedisKeys(`test-${randomUUID().slice(0, 8)}`).outboundBudget(7);

/** The calls a replica carried into the log on its way back from its own share. */
export async function carriedMembers(redis: RedisClient, budget: OutboundBudgetKeys): Promise<string[]> {
  return (await redis.zrange(budget.slots, '0', '-1')).filter((member) => member.includes(':carried:'));
}

export interface ReplicaRules {
  shared: SchedulerRules;
  local: LocalBudgetRules;
  failover: FailoverRules;
}

export interface ReplicaSetup {
  server: TestRedis;
  /** Where the replica reaches the server (a proxy in front of it); the server's own URL by default. */
  via?: string;
  fallback?: RedisDownFallback;
  sharedRules?: SchedulerRules;
  localRules?: LocalBudgetRules;
  failoverRules?: FailoverRules;
  commandTimeoutMs?: number;
  /** The shared limiter's wait for its slot (default: real timers). */
  sharedWait?: SlotWait;
  budget?: OutboundBudgetKeys;
  replicaId?: string;
}

export function failoverReplicas(rules: ReplicaRules) {
  const clients = new RedisClients();
  const limiters: FailoverOutboundRateLimiter[] = [];

  afterEach(async () => {
    await Promise.all(limiters.splice(0).map((limiter) => limiter.beforeApplicationShutdown()));
    await clients.closeAll();
  });
  afterAll(stopAllRedis);

  /** One replica as the gateway wires it, on a gateway-style connection to the server. */
  function replica({
    server,
    via,
    fallback = 'local',
    sharedRules = rules.shared,
    localRules = rules.local,
    failoverRules = rules.failover,
    commandTimeoutMs = 250,
    sharedWait,
    budget = freshBudget(),
    replicaId = `replica-${randomUUID().slice(0, 6)}`,
  }: ReplicaSetup) {
    const redis = clients.gatewayLike(server, commandTimeoutMs, via);
    const shared = new RedisOutboundRateLimiter(redis, budget, sharedRules, replicaId, undefined, sharedWait);
    const locals: LocalOutboundRateLimiter[] = [];
    const localCalls: number[] = [];
    const sizes: number[] = [];
    const localShare = (size: number): LocalOutboundRateLimiter => {
      const local = new LocalOutboundRateLimiter(localRules);
      const acquire = local.acquire.bind(local);
      local.acquire = async (options) => {
        await acquire(options);
        localCalls.push(performance.now());
      };
      locals.push(local);
      sizes.push(size);
      return local;
    };
    const log: LogMock = jest.fn();
    const warn: LogMock = jest.fn();
    const error: LogMock = jest.fn();
    const logger: LoggerService = { log, warn, error };
    const clock = new ManualClock();
    const policy = new RedisDownPolicy(
      redis,
      { fallback, assumedReplicas: 3, slowRoundTripMs: failoverRules.slowRoundTripMs },
      logger,
      clock.now,
    );
    const modes: SharedStoreMode[] = [];
    policy.onModeChange((mode) => modes.push(mode));
    const limiter = new FailoverOutboundRateLimiter(shared, localShare, policy, failoverRules, logger);
    const budgetModes: BudgetModeChange[] = [];
    limiter.onModeChange((change) => budgetModes.push(change));
    limiters.push(limiter);
    return { redis, budget, shared, locals, localCalls, sizes, limiter, policy, modes, budgetModes, log, warn, clock, replicaId };
  }

  /** A separate plain client to look at the budget with. */
  const observer = (server: TestRedis): RedisClient => clients.plain(server.url);

  return { replica, observer, clients };
}
