/**
 * The harness in test/support/redis-server.ts, which suites that need a Redis (and tests of Redis
 * outages) rely on: a private server that works, stops (port refused), restarts on the same port
 * with empty data, pauses (nothing answers) and resumes; REDIS_URL handling; no server left behind.
 */
import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { createConnection } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import {
  runningRedisPids,
  startPrivateRedis,
  startTestRedis,
  stopAllRedis,
  type TestRedis,
} from './redis-server.js';

const TIMEOUT = 30_000;

/** Clients opened by a test, closed after it (also when it failed). */
const clients: Redis[] = [];

function client(server: TestRedis, options: RedisOptions = {}): Redis {
  const redis = new Redis(server.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null, // no reconnect loops against a stopped server
    ...options,
  });
  redis.on('error', () => {
    // failures surface through the rejected commands the tests assert on
  });
  clients.push(redis);
  return redis;
}

/** Resolves with the error code of a fresh TCP connection attempt, or 'connected'. */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

afterEach(() => {
  // A client whose connection already ended is left alone: disconnect() on it would arm ioredis's
  // disconnect timer on an already-closed socket, which keeps jest from exiting.
  for (const redis of clients.splice(0)) if (redis.status !== 'end') redis.disconnect();
});

afterAll(async () => {
  await stopAllRedis();
});

describe('private redis-server harness', () => {
  it(
    'starts a private server on a loopback port that SET/GET work against',
    async () => {
      const server = await startPrivateRedis();
      expect(server.owned).toBe(true);
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect(server.isRunning()).toBe(true);

      const redis = client(server);
      await redis.connect();
      await expect(redis.set('harness:key', 'value-1')).resolves.toBe('OK');
      await expect(redis.get('harness:key')).resolves.toBe('value-1');
    },
    TIMEOUT,
  );

  it(
    'stop() ends the process and the port refuses new connections',
    async () => {
      const server = await startPrivateRedis();
      await expect(connectOutcome(server.port)).resolves.toBe('connected');

      await server.stop();
      expect(server.isRunning()).toBe(false);
      await expect(connectOutcome(server.port)).resolves.toBe('ECONNREFUSED');
      await expect(client(server).connect()).rejects.toThrow();
    },
    TIMEOUT,
  );

  it(
    'restart() brings it back on the same port with empty data',
    async () => {
      const server = await startPrivateRedis();
      const port = server.port;
      const before = client(server);
      await before.connect();
      await before.set('harness:old', 'kept?');

      await server.stop();
      await server.restart();
      expect(server.isRunning()).toBe(true);
      expect(server.port).toBe(port);

      const after = client(server);
      await after.connect();
      await expect(after.ping()).resolves.toBe('PONG');
      await expect(after.get('harness:old')).resolves.toBeNull();
      await expect(after.dbsize()).resolves.toBe(0);

      // restart() of a running server stops it first.
      await after.set('harness:again', 'x');
      await server.restart();
      const third = client(server);
      await third.connect();
      await expect(third.exists('harness:again')).resolves.toBe(0);
    },
    TIMEOUT,
  );

  it(
    'pause() makes it hang (nothing answers) and resume() makes it answer again',
    async () => {
      const server = await startPrivateRedis();
      const redis = client(server, { commandTimeout: 300 });
      await redis.connect();
      await expect(redis.ping()).resolves.toBe('PONG');

      server.pause();
      try {
        expect(server.isRunning()).toBe(true);
        await expect(redis.ping()).rejects.toThrow(/timed out/i);
        // The connection itself stays open: the client did not see it close.
        expect(redis.status).toBe('ready');
      } finally {
        server.resume();
      }

      // The reply to the timed-out PING arrives late and is matched to it: the next one is ours.
      await expect(redis.ping()).resolves.toBe('PONG');
      await expect(redis.set('harness:after-resume', '1')).resolves.toBe('OK');
    },
    TIMEOUT,
  );

  it(
    'stop() also ends a paused server',
    async () => {
      const server = await startPrivateRedis();
      server.pause();
      await server.stop();
      expect(server.isRunning()).toBe(false);
      await expect(connectOutcome(server.port)).resolves.toBe('ECONNREFUSED');
    },
    TIMEOUT,
  );

  it(
    'concurrent private servers get their own ports and data',
    async () => {
      const [a, b] = await Promise.all([startPrivateRedis(), startPrivateRedis()]);
      expect(a.port).not.toBe(b.port);
      const ca = client(a);
      const cb = client(b);
      await Promise.all([ca.connect(), cb.connect()]);
      await ca.set('harness:where', 'a');
      await expect(cb.get('harness:where')).resolves.toBeNull();
    },
    TIMEOUT,
  );
});

describe('startTestRedis', () => {
  const saved = process.env.REDIS_URL;
  afterEach(() => {
    if (saved === undefined) delete process.env.REDIS_URL;
    else process.env.REDIS_URL = saved;
  });

  it(
    'starts an owned private server when REDIS_URL is unset',
    async () => {
      delete process.env.REDIS_URL;
      const server = await startTestRedis();
      expect(server.owned).toBe(true);
      expect(server.isRunning()).toBe(true);
      const redis = client(server);
      await redis.connect();
      await expect(redis.ping()).resolves.toBe('PONG');
    },
    TIMEOUT,
  );

  it(
    'uses REDIS_URL when set, as a server it does not own (and refuses to stop)',
    async () => {
      const backing = await startPrivateRedis();
      process.env.REDIS_URL = backing.url;
      const server = await startTestRedis();
      expect(server.owned).toBe(false);
      expect(server.url).toBe(backing.url);
      expect(server.port).toBe(backing.port);
      await expect(server.stop()).rejects.toThrow(/not owned/);
      await expect(server.restart()).rejects.toThrow(/not owned/);
      expect(() => server.pause()).toThrow(/not owned/);
      expect(backing.isRunning()).toBe(true);
    },
    TIMEOUT,
  );
});

describe('cleanup', () => {
  it(
    'stopAllRedis() stops every private server still running, paused ones included',
    async () => {
      const a = await startPrivateRedis();
      const b = await startPrivateRedis();
      b.pause();
      expect(runningRedisPids().length).toBeGreaterThanOrEqual(2);

      await stopAllRedis();
      expect(a.isRunning()).toBe(false);
      expect(b.isRunning()).toBe(false);
      expect(runningRedisPids()).toEqual([]);
      await expect(connectOutcome(a.port)).resolves.toBe('ECONNREFUSED');
      await expect(connectOutcome(b.port)).resolves.toBe('ECONNREFUSED');
    },
    TIMEOUT,
  );
});
