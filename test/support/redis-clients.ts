/**
 * ioredis clients for specs, and closing them without leaving timers behind.
 *
 * - `plain(url)`: a test client that queues commands until connected and never reconnects.
 * - `gatewayLike(server, commandTimeoutMs, via?)`: built the way the gateway builds its client
 *   (`redisOptions`: no offline queue, a command timeout, reconnects forever), to the server or
 *   to `via` in front of it (a delaying proxy).
 * - `closeAll()` (call in afterEach) first brings back every owned server a gateway-like client was
 *   opened on (a test may have stopped or paused it), waits for each client to be ready or ended,
 *   then quits the ready ones and disconnects the rest unless already 'end'. The care is needed
 *   because disconnect() on a client that ended, or that is reconnecting on a closed socket, arms
 *   ioredis's 2 s destroy timer, which keeps jest alive after the run.
 *
 * Both kinds swallow 'error' events: failures surface through the rejected commands the tests
 * assert on (and while a server is stopped, the reconnect errors are expected).
 */
import { Redis } from 'ioredis';
import type { RedisSettings } from '../../src/redis/redis.settings.js';
import { Secret } from '../../src/config/secret.js';
import { redisOptions } from '../../src/redis/redis-options.js';
import { until } from './async-probes.js';
import type { TestRedis } from './redis-server.js';

/** How long closeAll waits for a client to reconnect to a server it brought back. */
const RECONNECT_TIMEOUT_MS = 10_000;

/** The settings the gateway would have for `url`, with key prefix 'test' and a short connect timeout. */
function gatewayLikeSettings(url: string, commandTimeoutMs: number): RedisSettings {
  return {
    connection: { kind: 'url', url: new Secret(url) },
    keyPrefix: 'test',
    commandTimeoutMs,
    connectTimeoutMs: 1000,
  };
}

/** The clients one spec file opened; create one per file and `closeAll()` after each test. */
export class RedisClients {
  private readonly clients: Redis[] = [];
  /** Servers to bring back before the clients quit (see closeAll). */
  private readonly servers: TestRedis[] = [];

  /** A plain test client: queues commands until connected, never reconnects. */
  plain(url: string): Redis {
    return this.keep(new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null }));
  }

  /**
   * A client built the way the gateway builds it: no offline queue, command timeout, reconnects.
   * Takes the server (not just its URL) so that closeAll can bring it back when a test stopped or
   * paused it.
   */
  gatewayLike(server: TestRedis, commandTimeoutMs = 250, via = server.url): Redis {
    if (server.owned && !this.servers.includes(server)) this.servers.push(server);
    return this.keep(new Redis(via, redisOptions(gatewayLikeSettings(via, commandTimeoutMs))));
  }

  /** Restarts / resumes the servers, then quits or disconnects every client (see the file comment). */
  async closeAll(): Promise<void> {
    for (const server of this.servers.splice(0)) {
      if (!server.isRunning()) await server.restart();
      else server.resume();
    }
    for (const redis of this.clients.splice(0)) {
      await until(() => redis.status === 'ready' || redis.status === 'end', 'the client is back', RECONNECT_TIMEOUT_MS).catch(
        () => undefined,
      );
      if (redis.status === 'ready') await redis.quit().catch(() => undefined);
      else if (redis.status !== 'end') redis.disconnect();
    }
  }

  private keep(redis: Redis): Redis {
    redis.on('error', () => undefined);
    this.clients.push(redis);
    return redis;
  }
}
