import { type DynamicModule, Global, Logger, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import { REDIS } from '../redis/redis.module.js';
import { RedisDownPolicy } from '../redis/redis-down-policy.js';
import { RedisKeys } from '../redis/redis-keys.js';
import type { RedisDownSettings } from '../redis/redis.settings.js';
import { ClientQuotaGuard } from './client-quota.guard.js';
import { quotaPerSecond } from './client-quota-limit.js';
import { FailoverOutboundRateLimiter } from './failover-outbound-rate-limiter.js';
import { InProcessThrottlerStorage } from './in-process-throttler-storage.js';
import { LocalOutboundRateLimiter } from './local-outbound-rate-limiter.js';
import { OutboundRateLimiter } from './outbound-rate-limiter.js';
import { handoverRules, localShareRules, outboundRules } from './outbound-rules.js';
import type { ClientQuotaSettings, OutboundSettings } from './rate-limit.settings.js';
import { RedisOutboundRateLimiter } from './redis-outbound-rate-limiter.js';
import { RedisThrottlerStorage } from './redis-throttler-storage.js';

/** What the limiter is built from. */
export interface OutboundLimiterContext {
  config: {
    readonly outbound: OutboundSettings;
    readonly redisDown: RedisDownSettings;
    /** The vendor account (ZEGO_APP_ID): the budget is its. */
    readonly zego: { readonly appId: number };
  };
  /** Null without any Redis configured. */
  redis: Redis | null;
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
          inject: [APP_CONFIG, REDIS, RedisKeys, RedisDownPolicy],
          useFactory: (
            config: { readonly clientQuota: ClientQuotaSettings },
            redis: Redis | null,
            keys: RedisKeys,
            policy: RedisDownPolicy,
          ) => ({
            throttlers: [{ ttl: 1000, limit: (context) => quotaPerSecond(config, context) }],
            storage: redis ? new RedisThrottlerStorage(redis, keys, policy) : new InProcessThrottlerStorage(),
          }),
        }),
      ],
      providers: [
        {
          provide: OutboundRateLimiter,
          inject: [APP_CONFIG, REDIS, RedisKeys, RedisDownPolicy],
          useFactory: (config: OutboundLimiterContext['config'], redis: Redis | null, keys: RedisKeys, policy: RedisDownPolicy) =>
            outboundFactory({ config, redis, keys, policy }),
        },
        ClientQuotaGuard,
      ],
      exports: [OutboundRateLimiter, ClientQuotaGuard],
    };
  }
}

function createOutboundRateLimiter({ config, redis, keys, policy }: OutboundLimiterContext): OutboundRateLimiter {
  const logger = new Logger('OutboundRateLimiter');
  const rules = outboundRules(config);
  if (!redis) {
    logger.warn(
      // Says "Redis" whichever way it was to be reached (URL or Sentinel).
      'No Redis is configured: the outbound limiter runs in process, which is safe for one replica only',
    );
    return new LocalOutboundRateLimiter(rules);
  }
  const share = localShareRules(config);
  const handover = handoverRules(config);
  logger.log(
    `Outbound limiter shared through Redis: at most ${rules.limit} calls per ${rules.windowMs} ms ` +
      `for the fleet; while Redis is unreachable: ${policy.fallback}` +
      (policy.fallback === 'local'
        ? ` (${share.limit} per ${share.windowMs} ms per replica, then ${handover.limit} per window ` +
          `for ${handover.durationMs} ms after Redis is back)`
        : ''),
  );
  const appId = config.zego.appId;
  const shared = new RedisOutboundRateLimiter(
    redis,
    { slots: keys.outboundSlots(appId), handover: keys.outboundHandover(appId) },
    { ...rules, handover },
  );
  return new FailoverOutboundRateLimiter(shared, new LocalOutboundRateLimiter(share), policy, logger);
}
