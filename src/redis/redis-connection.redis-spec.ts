import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import { Redis } from 'ioredis';
import { waitFor } from '../../test/support/async-probes.js';
import { startPrivateRedis, startTestRedis, stopAllRedis, type TestRedis } from '../../test/support/redis-server.js';
import type { RedisSettings } from './redis.settings.js';
import { Secret } from '../config/secret.js';
import { connectRedis } from './redis-connection.js';
import { redisOptions } from './redis-options.js';

function settings(url: string): RedisSettings {
  return { connection: { kind: 'url', url: new Secret(url) }, keyPrefix: 'p', commandTimeoutMs: 250, connectTimeoutMs: 1000 };
}

function recordingLogger() {
  const warnings: string[] = [];
  const logger: LoggerService = { log: () => undefined, error: () => undefined, warn: (m: unknown) => void warnings.push(String(m)) };
  return { logger, warnings };
}

const opened: Redis[] = [];
/** A connection from a URL: always one Redis, never a Cluster. */
function fromUrl(url: string, logger: LoggerService, overrides: Partial<RedisSettings> = {}): Redis {
  const redis = connectRedis({ ...settings(url), ...overrides }, logger);
  if (!(redis instanceof Redis)) throw new Error('a URL must give one Redis connection');
  return redis;
}
function open(url: string, logger: LoggerService, overrides: Partial<RedisSettings> = {}): Redis {
  const redis = fromUrl(url, logger, overrides);
  opened.push(redis);
  return redis;
}

let server: TestRedis;
beforeAll(async () => {
  server = await startPrivateRedis();
});
afterAll(async () => {
  for (const redis of opened) redis.disconnect();
  await stopAllRedis();
});

describe('connectRedis', () => {
  it('connects in the background to the URL it was given', async () => {
    const { logger } = recordingLogger();
    // The gateway's 250 ms command timeout is not what this checks: a starved test worker may miss it.
    const redis = open(server.url, logger, { commandTimeoutMs: 5_000 });
    await waitFor(() => redis.status === 'ready', { what: 'the connection to be ready' });
    expect(await redis.ping()).toBe('PONG');
  });

  it('takes user, password, database and TLS from a rediss:// URL, keeping our timeouts', () => {
    const { logger } = recordingLogger();
    const redis = fromUrl('rediss://gateway:pa%24%24word@127.0.0.1:1/3', logger, { commandTimeoutMs: 321 });
    redis.disconnect();
    expect(redis.options).toMatchObject({ username: 'gateway', password: 'pa$$word', db: 3, commandTimeout: 321 });
    expect(redis.options.tls).toBeTruthy();
    expect(redis.options.enableOfflineQueue).toBe(false);
  });

  it('logs a connection error once per distinct reason, not once per reconnect attempt', async () => {
    const { logger, warnings } = recordingLogger();
    // A port nothing listens on: every reconnect fails the same way.
    const redis = open('redis://127.0.0.1:1', logger);
    await waitFor(() => redis.status === 'reconnecting' && warnings.length > 0, { what: 'a failed connection' });
    const reconnects: number[] = [];
    redis.on('reconnecting', (delay: number) => reconnects.push(delay));
    await waitFor(() => reconnects.length >= 3, { what: 'three more reconnect attempts', timeoutMs: 10_000 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^Redis connection error: .*ECONNREFUSED/);
  });
});

describe('redisOptions with a real Redis', () => {
  it('connects with the options and fails a command at once while disconnected', async () => {
    const server = await startTestRedis();
    const redis = new Redis(server.url, redisOptions(settings(server.url)));
    redis.on('error', () => undefined);
    try {
      // No offline queue: a command before the connection is ready fails instead of waiting.
      await expect(redis.ping()).rejects.toThrow(/enableOfflineQueue/);
      await new Promise<void>((resolve, reject) => {
        redis.once('ready', resolve);
        redis.once('end', () => reject(new Error('the connection ended')));
      });
      await expect(redis.ping()).resolves.toBe('PONG');
      expect(await redis.client('GETNAME')).toBe('zim-room-gateway');
    } finally {
      if (redis.status === 'ready') await redis.quit();
      else if (redis.status !== 'end') redis.disconnect();
    }
  });
});
