import { Logger, type LoggerService } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import type { RedisSettings } from './redis.settings.js';
import { describeRedisFailure } from './redis-call-failed.js';
import { roleClusterOptions, roleOptions, type RedisRole } from './redis-options.js';

/** One Redis (by URL, or found through Sentinel) or a Cluster: the stores send the same commands to each. */
export type RedisClient = Redis | Cluster;

/**
 * Opens a Redis connection for `role` in the background: start-up never waits for Redis, and until
 * it answers the limiter runs in its fallback mode.
 */
export function connectRedis(settings: RedisSettings, logger: LoggerService = new Logger('Redis'), role: RedisRole = 'request-path'): RedisClient {
  const { connection } = settings;
  const options = roleOptions(settings, role);
  const redis: RedisClient =
    connection.kind === 'url'
      ? new Redis(connection.url.reveal(), options)
      : connection.kind === 'cluster'
        ? new Cluster(
            connection.nodes.map(({ host, port }) => ({ host, port })),
            roleClusterOptions(settings, role),
          )
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
