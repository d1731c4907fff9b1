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
 * ioredis Cluster options with the same promise as one connection: no offline queue (a command
 * while the cluster, or the node of its slot, is not ready fails at once), a timeout on every
 * command, and nothing sent after its caller was answered. A redirection (MOVED, ASK) is followed
 * at once: the node that sent it did not run the command. The retries a failover or a resharding
 * would want (TRYAGAIN, CLUSTERDOWN, a connection closed) are not delayed: a delayed retry is
 * still sent after the command timed out, so a script its caller gave up on could run later (a
 * reservation nobody waits for, a quota hit counted twice). Such a command fails within a few
 * milliseconds instead, which is Redis down for its store, under the policy. Reads go to primaries.
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
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    retryDelayOnTryAgain: 0,
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
/** How often the slot map is read again, besides after every MOVED (ioredis reads it only then unless told). */
const CLUSTER_SLOTS_REFRESH_MS = 5000;

/**
 * What a connection is for: the request path (the process's one connection), adding batch rooms
 * to their queues (fail fast too, named apart), or BullMQ's workers, which wait differently: their
 * blocking reads (BZPOPMIN) must not time out, and a command while Redis is away waits for the
 * reconnect instead of failing, as BullMQ requires (`maxRetriesPerRequest: null`).
 */
export type RedisRole = 'request-path' | 'queue-producer' | 'queue-worker';

/** The name (CLIENT LIST) of the batch queues' connections, apart from the request path's `zim-room-gateway`. */
export const QUEUE_CONNECTION_NAME = 'zim-room-gateway-batches';

/** redisOptions for a connection of `role`. */
export function roleOptions(settings: RedisSettings, role: RedisRole): RedisOptions {
  const options = redisOptions(settings);
  if (role === 'request-path') return options;
  if (role === 'queue-producer') return { ...options, connectionName: QUEUE_CONNECTION_NAME };
  return {
    ...options,
    connectionName: QUEUE_CONNECTION_NAME,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    autoResendUnfulfilledCommands: true,
    commandTimeout: undefined,
  };
}

/** clusterOptions for a connection of `role`: every node's connection as roleOptions says. */
export function roleClusterOptions(settings: RedisSettings, role: RedisRole): ClusterOptions {
  const cluster = clusterOptions(settings);
  if (role === 'request-path') return cluster;
  const { retryStrategy: _reconnect, enableOfflineQueue, ...perNode } = roleOptions(settings, role);
  return { ...cluster, enableOfflineQueue: enableOfflineQueue ?? false, redisOptions: { ...cluster.redisOptions, ...perNode } };
}
