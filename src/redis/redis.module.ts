import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { RedisClient } from './redis-connection.js';
import { APP_CONFIG } from '../config/config.module.js';
import { connectRedis } from './redis-connection.js';
import { RedisDownPolicy } from './redis-down-policy.js';
import { RedisKeys } from './redis-keys.js';
import { DEFAULT_KEY_PREFIX, type RedisDownSettings, type RedisSettings } from './redis.settings.js';

/** The one Redis connection of the process (limiter, quotas, idempotency, readiness), or null without Redis. */
export const REDIS = Symbol('REDIS');

interface RedisConfig {
  readonly redis?: RedisSettings;
  readonly redisDown: RedisDownSettings;
}

/**
 * Everything about Redis that is not a feature's: the connection, the key names, and the policy
 * every shared store follows while Redis is down.
 */
@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [APP_CONFIG],
      useFactory: (config: RedisConfig) => (config.redis ? connectRedis(config.redis) : null),
    },
    {
      provide: RedisKeys,
      inject: [APP_CONFIG],
      useFactory: (config: RedisConfig) => new RedisKeys(config.redis?.keyPrefix ?? DEFAULT_KEY_PREFIX),
    },
    {
      provide: RedisDownPolicy,
      inject: [REDIS, APP_CONFIG],
      useFactory: (redis: RedisClient | null, config: RedisConfig) => new RedisDownPolicy(redis, config.redisDown),
    },
  ],
  exports: [REDIS, RedisKeys, RedisDownPolicy],
})
export class RedisModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: RedisClient | null) {}

  async onApplicationShutdown(): Promise<void> {
    if (!this.redis) return;
    // QUIT lets Redis finish what it was doing; a dead connection is simply dropped.
    await this.redis.quit().catch(() => this.redis!.disconnect());
  }
}
