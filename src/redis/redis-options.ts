import type { RedisOptions } from 'ioredis';
import type { RedisSettings } from './redis.settings.js';

/**
 * Reconnect quickly, and keep trying: the gateway returns to the shared limiter by itself, and
 * the replicas of a fleet return within a quarter second of each other.
 */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(25 * 2 ** Math.min(attempt - 1, 4), 250);
}

/**
 * ioredis options for a connection that never holds a request up: no offline queue (a command
 * while disconnected fails at once), every command has a timeout, nothing is retried or re-sent
 * after a reconnect (a re-sent reservation would take a second slot), and the first connection
 * attempt does not block start-up.
 */
export function redisOptions(settings: RedisSettings): RedisOptions {
  const common: RedisOptions = {
    connectionName: 'zim-room-gateway',
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: settings.commandTimeoutMs,
    connectTimeout: settings.connectTimeoutMs,
    // A closing socket that does not finish closing is destroyed after this, so shutdown is quick.
    disconnectTimeout: settings.commandTimeoutMs,
    retryStrategy: reconnectDelayMs,
    lazyConnect: false,
  };
  const { connection } = settings;
  if (connection.kind === 'url') return common;
  return {
    ...common,
    sentinels: connection.sentinels.map(({ host, port }) => ({ host, port })),
    name: connection.masterName,
    username: connection.username,
    password: connection.password?.reveal(),
    sentinelPassword: connection.sentinelPassword?.reveal(),
    sentinelRetryStrategy: reconnectDelayMs,
    sentinelCommandTimeout: settings.commandTimeoutMs,
    ...(connection.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
  };
}
