import type { ClusterOptions, RedisOptions } from 'ioredis';
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
  if (connection.kind !== 'sentinel') return common;
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

/**
 * ioredis Cluster options with the same promise per node: no offline queue, a timeout on every
 * command, nothing re-sent after a node's connection closed. Redirections (MOVED, ASK) are
 * followed, as are the few retries a failover or a resharding needs (TRYAGAIN, CLUSTERDOWN), each
 * within the command's timeout; reads go to primaries, which own the slots the scripts write.
 */
export function clusterOptions(settings: RedisSettings): ClusterOptions {
  const { connection } = settings;
  if (connection.kind !== 'cluster') throw new Error('clusterOptions needs REDIS_CLUSTER_NODES');
  const { retryStrategy: _reconnect, enableOfflineQueue: _queue, ...perNode } = redisOptions(settings);
  return {
    enableOfflineQueue: false,
    enableReadyCheck: true,
    scaleReads: 'master',
    clusterRetryStrategy: reconnectDelayMs,
    maxRedirections: CLUSTER_MAX_REDIRECTIONS,
    retryDelayOnFailover: CLUSTER_RETRY_DELAY_MS,
    retryDelayOnClusterDown: CLUSTER_RETRY_DELAY_MS,
    retryDelayOnTryAgain: CLUSTER_RETRY_DELAY_MS,
    retryDelayOnMoved: 0,
    slotsRefreshTimeout: settings.connectTimeoutMs,
    slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS,
    lazyConnect: false,
    redisOptions: {
      ...perNode,
      username: connection.username,
      password: connection.password?.reveal(),
      ...(connection.tls ? { tls: {} } : {}),
    },
  };
}

/** Redirections one command may follow (a resharding moves a slot once, a failover once more). */
const CLUSTER_MAX_REDIRECTIONS = 4;
/** Between the retries of a command during a failover: a node timeout is one to a few seconds. */
const CLUSTER_RETRY_DELAY_MS = 50;
/** How often the slot map is read again, besides after every MOVED. */
const CLUSTER_SLOTS_REFRESH_MS = 5000;
