import { type DynamicModule, Global, Logger, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { REDIS } from '../redis/redis.module.js';
import { ClientQuotaGuard } from './client-quota.guard.js';
import { quotaPerSecond } from './client-quotas.js';
import { FailoverOutboundRateLimiter } from './failover-outbound-rate-limiter.js';
import { InProcessThrottlerStorage } from './in-process-throttler-storage.js';
import { LocalOutboundRateLimiter } from './local-outbound-rate-limiter.js';
import { OutboundRateLimiter } from './outbound-rate-limiter.js';
import { registerOutboundLimiterMetrics } from './outbound-limiter-metrics.js';
import { handoverRules, localShareRules, outboundRules } from './outbound-rules.js';
import { RedisOutboundRateLimiter } from './redis-outbound-rate-limiter.js';
import { RedisThrottlerStorage } from './redis-throttler-storage.js';

/** Builds the outbound limiter; replaceable (the benchmark's fixed-window baseline does). */
export type OutboundRateLimiterFactory = (config: AppConfig, redis: Redis | null) => OutboundRateLimiter;

@Global()
@Module({})
export class RateLimitModule {
  static forRoot(outboundFactory: OutboundRateLimiterFactory = createOutboundRateLimiter): DynamicModule {
    return {
      module: RateLimitModule,
      imports: [
        ThrottlerModule.forRootAsync({
          inject: [APP_CONFIG, REDIS],
          useFactory: (config: AppConfig, redis: Redis | null) => ({
            throttlers: [{ ttl: 1000, limit: (context) => quotaPerSecond(config, context) }],
            storage: redis
              ? new RedisThrottlerStorage(redis, config.redis!.keyPrefix, {
                  policy: config.outbound.onRedisDown,
                  assumedReplicas: config.outbound.assumedReplicas,
                })
              : new InProcessThrottlerStorage(),
          }),
        }),
      ],
      providers: [
        {
          provide: OutboundRateLimiter,
          inject: [APP_CONFIG, REDIS, Registry],
          useFactory: (config: AppConfig, redis: Redis | null, registry: Registry) => {
            const limiter = outboundFactory(config, redis);
            registerOutboundLimiterMetrics(registry, limiter);
            return limiter;
          },
        },
        ClientQuotaGuard,
      ],
      exports: [OutboundRateLimiter, ClientQuotaGuard],
    };
  }
}

function createOutboundRateLimiter(config: AppConfig, redis: Redis | null): OutboundRateLimiter {
  const logger = new Logger('OutboundRateLimiter');
  const rules = outboundRules(config);
  if (!redis) {
    logger.warn(
      'REDIS_URL is not set: the outbound limiter runs in process, which is safe for one replica only',
    );
    return new LocalOutboundRateLimiter(rules);
  }
  const key = `${config.redis!.keyPrefix}:{outbound:${config.zego.appId}}:slots`;
  const share = localShareRules(config);
  const fallback = { policy: config.outbound.onRedisDown, local: new LocalOutboundRateLimiter(share) };
  const handover = handoverRules(config);
  logger.log(
    `Outbound limiter shared through Redis: at most ${rules.limit} calls per ${rules.windowMs} ms ` +
      `for the fleet; while Redis is unreachable: ${fallback.policy}` +
      (fallback.policy === 'local'
        ? ` (${share.limit} per ${share.windowMs} ms per replica, then ${handover.limit} per window ` +
          `for ${handover.durationMs} ms after Redis is back)`
        : ''),
  );
  const shared = new RedisOutboundRateLimiter(redis, key, { ...rules, handover });
  return new FailoverOutboundRateLimiter(shared, redis, fallback, logger);
}
