import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { type DynamicModule, Global, Logger, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import type { RedisClient } from '../redis/redis-connection.js';
import { APP_CONFIG } from '../config/config.module.js';
import { REDIS } from '../redis/redis.module.js';
import { RedisDownPolicy } from '../redis/redis-down-policy.js';
import { RedisKeys } from '../redis/redis-keys.js';
import type { RedisDownSettings } from '../redis/redis.settings.js';
import { ClientQuotaEvents } from './client-quota-events.js';
import { ClientQuotaGuard } from './client-quota.guard.js';
import { PriorityGuard } from './priority.guard.js';
import { quotaPerSecond } from './client-quota-limit.js';
import { FailoverOutboundRateLimiter } from './failover-outbound-rate-limiter.js';
import { InProcessThrottlerStorage } from './in-process-throttler-storage.js';
import { LocalOutboundRateLimiter } from './local-outbound-rate-limiter.js';
import { OutboundRateLimiter } from './outbound-rate-limiter.js';
import { failoverRules, localShareRules, schedulerRules, standaloneRules } from './outbound-rules.js';
import type { ClientQuotaSettings, OutboundSettings } from './rate-limit.settings.js';
import { RedisOutboundRateLimiter } from './redis-outbound-rate-limiter.js';
import { RedisThrottlerStorage } from './redis-throttler-storage.js';
import { monotonicNow } from './slot-wait.js';

/** What the limiter is built from. */
export interface OutboundLimiterContext {
  config: {
    readonly outbound: OutboundSettings;
    readonly redisDown: RedisDownSettings;
    /** The vendor account (ZEGO_APP_ID): the budget is its. */
    readonly zego: { readonly appId: number };
  };
  /** Null without any Redis configured. */
  redis: RedisClient | null;
  keys: RedisKeys;
  policy: RedisDownPolicy;
}

/** Builds the outbound limiter; replaceable (the benchmark's fixed-window baseline does). */
export type OutboundRateLimiterFactory = (context: OutboundLimiterContext) => OutboundRateLimiter;

/** The outbound budget (the limiter every vendor call takes a slot from) and the per-client quotas. */
@Global()
@Module({})
export class RateLimitModule {
  static forRoot(outboundFactory: OutboundRateLimiterFactory = createOutboundRateLimiter): DynamicModule {
    return {
      module: RateLimitModule,
      imports: [
        ThrottlerModule.forRootAsync({
          inject: [APP_CONFIG, REDIS, RedisKeys, RedisDownPolicy, ClientQuotaEvents],
          useFactory: (
            config: { readonly clientQuota: ClientQuotaSettings },
            redis: RedisClient | null,
            keys: RedisKeys,
            policy: RedisDownPolicy,
            events: ClientQuotaEvents,
          ) => ({
            throttlers: [{ ttl: 1000, limit: (context) => quotaPerSecond(config, context) }],
            storage: redis
              ? new RedisThrottlerStorage(redis, keys, policy, { events })
              : new InProcessThrottlerStorage(monotonicNow, events),
          }),
        }),
      ],
      providers: [
        {
          provide: OutboundRateLimiter,
          inject: [APP_CONFIG, REDIS, RedisKeys, RedisDownPolicy],
          useFactory: (config: OutboundLimiterContext['config'], redis: RedisClient | null, keys: RedisKeys, policy: RedisDownPolicy) =>
            outboundFactory({ config, redis, keys, policy }),
        },
        ClientQuotaEvents,
        ClientQuotaGuard,
        PriorityGuard,
      ],
      exports: [OutboundRateLimiter, ClientQuotaEvents, ClientQuotaGuard, PriorityGuard],
    };
  }
}

function createOutboundRateLimiter({ config, redis, keys, policy }: OutboundLimiterContext): OutboundRateLimiter {
  const logger = new Logger('OutboundRateLimiter');
  if (!redis) {
    logger.warn(
      // Says "Redis" whichever way it was to be reached (URL, Sentinel or Cluster).
      'No Redis is configured: the outbound limiter runs in process, which is safe for one replica only',
    );
    return new LocalOutboundRateLimiter(standaloneRules(config));
  }
  const rules = schedulerRules(config);
  const share = localShareRules(config, policy.assumedReplicas);
  logger.log(
    `Outbound limiter shared through Redis: at most ${rules.limit} calls per ${rules.windowMs} ms for the fleet, ` +
      `shared fairly between clients (interactive first, at least ${config.outbound.batchMinShare} for batch); ` +
      `while Redis is unreachable: ${policy.fallback}` +
      (policy.fallback === 'local'
        ? ` (each replica its share of the fleet Redis last counted; ${share.limit} per ${share.windowMs} ms ` +
          `before the first contact)`
        : ''),
  );
  const replicaId = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const shared = new RedisOutboundRateLimiter(redis, keys.outboundBudget(config.zego.appId), rules, replicaId);
  const localShare = (size: number): LocalOutboundRateLimiter => new LocalOutboundRateLimiter(localShareRules(config, size));
  return new FailoverOutboundRateLimiter(shared, localShare, policy, failoverRules(config), logger);
}
