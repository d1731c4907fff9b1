import { Logger, type LoggerService } from '@nestjs/common';
import { Redis } from 'ioredis';
import type { RedisSettings } from './redis.settings.js';
import { describeRedisFailure } from './redis-call-failed.js';
import { redisOptions } from './redis-options.js';

/**
 * Opens the process's Redis connection in the background: start-up never waits for Redis, and
 * until it answers the limiter runs in its fallback mode.
 */
export function connectRedis(settings: RedisSettings, logger: LoggerService = new Logger('Redis')): Redis {
  const options = redisOptions(settings);
  const redis =
    settings.connection.kind === 'url'
      ? new Redis(settings.connection.url.reveal(), options)
      : new Redis(options);
  let lastError = '';
  // Without a listener ioredis prints every failed reconnect; one line per distinct error is enough.
  redis.on('error', (error: unknown) => {
    const reason = describeRedisFailure(error);
    if (reason !== lastError) logger.warn(`Redis connection error: ${reason}`);
    lastError = reason;
  });
  redis.on('ready', () => {
    lastError = '';
  });
  return redis;
}
