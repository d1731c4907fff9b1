import { Logger, type LoggerService } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import type { RedisSettings } from './redis.settings.js';
import { describeRedisFailure } from './redis-call-failed.js';
import { clusterOptions, QUEUE_CONNECTION_NAME, queueWorkerClusterOptions, queueWorkerOptions, redisOptions } from './redis-options.js';

/** One Redis (by URL, or found through Sentinel) or a Cluster: the stores send the same commands to each. */
export type RedisClient = Redis | Cluster;

/**
 * What a connection is for: the request path (fail fast: the process's one connection), adding
 * batch rooms to their queues (fail fast too, named apart), or BullMQ's workers (wait out a
 * reconnect, block without a timeout).
 */
export type RedisRole = 'request-path' | 'queue-producer' | 'queue-worker';

export function connectRedis(settings: RedisSettings, logger: LoggerService = new Logger('Redis'), role: RedisRole = 'request-path'): RedisClient {
  const { connection } = settings;
  const options =
    role === 'request-path'
      ? redisOptions(settings)
      : role === 'queue-producer'
        ? { ...redisOptions(settings), connectionName: QUEUE_CONNECTION_NAME }
        : queueWorkerOptions(settings);
  const redis: RedisClient =
    connection.kind === 'url'
      ? new Redis(connection.url.reveal(), options)
      : connection.kind === 'cluster'
        ? new Cluster(
            connection.nodes.map(({ host, port }) => ({ host, port })),
            role === 'queue-worker' ? queueWorkerClusterOptions(settings) : clusterOptions(settings),
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
