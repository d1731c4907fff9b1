/**
 * The TCP proxy harness (tcp-proxy.ts in its own process, driven through tcp-proxy-process.ts),
 * which the fleet tests put between a gateway and Redis: it forwards both ways, a cut refuses or
 * blackholes, restore forwards again, delays add to the trip, and a Redis client through it sees
 * the cut while Redis itself keeps answering.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { until } from './async-probes.js';
import { startPrivateRedis, stopAllRedis, type TestRedis } from './redis-server.js';
import { runningTcpProxyPids, startTcpProxy, stopAllTcpProxies, type TcpProxyProcess } from './tcp-proxy-process.js';

const TIMEOUT = 30_000;
/**
 * How long a test watches for bytes that must not move. Absence can only be seen over time; on
 * loopback a forwarded chunk comes back within a millisecond or two, so this is ample.
 */
const QUIET_MS = 300;

/** An echo server in the test process: what the proxy forwards to. */
let echo: Server;
let echoPort: number;
let echoConnections = 0;
const echoSockets = new Set<Socket>();

beforeAll(async () => {
  echo = createServer((socket) => {
    echoConnections += 1;
    echoSockets.add(socket);
    socket.on('close', () => echoSockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  echoPort = (echo.address() as AddressInfo).port;
});

/** Client sockets a test opened, destroyed after it. */
const sockets: Socket[] = [];

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
});

afterAll(async () => {
  await stopAllTcpProxies();
  await stopAllRedis();
  for (const socket of echoSockets) socket.destroy();
  await new Promise((resolve) => echo.close(resolve));
});

/** A client connection through the proxy: what it received, and how it ended. */
interface Client {
  socket: Socket;
  received(): string;
  /** Resolves with the error code the connection ended with ('' for a clean close). */
  ended: Promise<string>;
}

/** `connected: false` for a connection the proxy may reset before the client saw it connect. */
async function connectClient(port: number, { connected = true } = {}): Promise<Client> {
  const socket = createConnection({ host: '127.0.0.1', port });
  sockets.push(socket);
  let text = '';
  let errorCode = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    text += chunk;
  });
  socket.on('error', (error: NodeJS.ErrnoException) => {
    errorCode = error.code ?? error.message;
  });
  const ended = new Promise<string>((resolve) => socket.once('close', () => resolve(errorCode)));
  if (connected) await once(socket, 'connect');
  return { socket, received: () => text, ended };
}

function echoProxy(): Promise<TcpProxyProcess> {
  return startTcpProxy({ target: { host: '127.0.0.1', port: echoPort } });
}

describe('tcp proxy', () => {
  it(
    'forwards both ways and counts connections and bytes',
    async () => {
      const proxy = await echoProxy();
      expect(proxy.address).toBe(`127.0.0.1:${proxy.port}`);
      expect(proxy.url('redis')).toBe(`redis://127.0.0.1:${proxy.port}`);
      const client = await connectClient(proxy.port);
      client.socket.write('hello');
      await until(() => client.received() === 'hello', 'the echo through the proxy', 5_000);
      client.socket.end();
      await client.ended;

      await until(async () => (await proxy.stats()).open === 0, 'the connection closed on both sides', 5_000);
      expect(await proxy.stats()).toEqual({
        state: 'open',
        opened: 1,
        forwarded: 1,
        refused: 0,
        targetFailures: 0,
        open: 0,
        bytesUpstream: 5,
        bytesDownstream: 5,
      });
    },
    TIMEOUT,
  );

  it(
    'refuse: open connections are reset, new ones are reset at once, and restore forwards again',
    async () => {
      const proxy = await echoProxy();
      const open = await connectClient(proxy.port);
      open.socket.write('before');
      await until(() => open.received() === 'before', 'the echo before the cut', 5_000);

      const stats = await proxy.cut('refuse');
      expect(stats.state).toBe('refuse');
      expect(await open.ended).toBe('ECONNRESET');

      const refused = await connectClient(proxy.port, { connected: false });
      expect(await refused.ended).toBe('ECONNRESET');
      expect(refused.received()).toBe('');
      expect((await proxy.stats()).refused).toBe(1);

      await proxy.restore();
      const after = await connectClient(proxy.port);
      after.socket.write('after');
      await until(() => after.received() === 'after', 'the echo after restore', 5_000);
    },
    TIMEOUT,
  );

  it(
    'blackhole: open connections are reset, a new one is accepted and nothing moves until restore, then what it sent goes through',
    async () => {
      const proxy = await echoProxy();
      const open = await connectClient(proxy.port);
      await until(async () => (await proxy.stats()).forwarded === 1, 'the first connection forwarded', 5_000);
      await proxy.cut('blackhole');
      expect(await open.ended).toBe('ECONNRESET');

      const connectionsBefore = echoConnections;
      const held = await connectClient(proxy.port);
      held.socket.write('held');
      await sleep(QUIET_MS);
      expect(held.received()).toBe('');
      expect(echoConnections).toBe(connectionsBefore);
      const during = await proxy.stats();
      expect(during).toMatchObject({ state: 'blackhole', open: 1, forwarded: 1, bytesUpstream: 0 });

      await proxy.restore();
      await until(() => held.received() === 'held', 'the held bytes echoed after restore', 5_000);
      expect(echoConnections).toBe(connectionsBefore + 1);
    },
    TIMEOUT,
  );

  it(
    'blackhole with frozen open connections: an open connection stays open and silent, and carries on after restore',
    async () => {
      const proxy = await echoProxy();
      const client = await connectClient(proxy.port);
      client.socket.write('one;');
      await until(() => client.received() === 'one;', 'the echo before the cut', 5_000);

      await proxy.cut('blackhole', { openConnections: 'freeze' });
      client.socket.write('two;');
      await sleep(QUIET_MS);
      expect(client.received()).toBe('one;');
      expect(client.socket.destroyed).toBe(false);
      expect((await proxy.stats()).open).toBe(1);

      await proxy.restore();
      await until(() => client.received() === 'one;two;', 'the frozen bytes echoed after restore', 5_000);
      expect((await proxy.stats()).forwarded).toBe(1);
    },
    TIMEOUT,
  );

  it(
    'shaping: one-way delays add to every round trip, and the set-up delay holds a connection before its first byte',
    async () => {
      const proxy = await startTcpProxy({
        target: `127.0.0.1:${echoPort}`,
        shaping: { upstream: { delayMs: 60 }, downstream: { delayMs: 40, jitterMs: 20 } },
      });
      const client = await connectClient(proxy.port);
      for (let round = 1; round <= 3; round++) {
        const sentAt = performance.now();
        client.socket.write('x');
        await until(() => client.received().length === round, `echo ${round}`, 5_000);
        expect(performance.now() - sentAt).toBeGreaterThanOrEqual(100);
      }

      await proxy.shape({ setupDelayMs: 150 });
      const connectedAt = performance.now();
      const late = await connectClient(proxy.port);
      late.socket.write('y');
      await until(() => late.received() === 'y', 'the echo on a connection set up late', 5_000);
      expect(performance.now() - connectedAt).toBeGreaterThanOrEqual(150);

      await expect(proxy.shape({ upstream: { delayMs: -1 } })).rejects.toThrow(/400.*delayMs/);
      await expect(proxy.cut('sideways' as never)).rejects.toThrow(/400.*refuse or blackhole/);
    },
    TIMEOUT,
  );

  it(
    'resets the client when the target refuses the connection',
    async () => {
      const redis = await startPrivateRedis();
      const proxy = await startTcpProxy({ target: `127.0.0.1:${redis.port}` });
      await redis.stop();
      const client = await connectClient(proxy.port, { connected: false });
      expect(await client.ended).toBe('ECONNRESET');
      expect((await proxy.stats()).targetFailures).toBe(1);
    },
    TIMEOUT,
  );

  describe('a Redis client through the proxy', () => {
    let redis: TestRedis;
    let proxy: TcpProxyProcess;
    const clients: Redis[] = [];

    /** Built like the gateway's connection: no offline queue, a command timeout, reconnects. */
    function gatewayLikeClient(url: string): Redis {
      const client = new Redis(url, {
        commandTimeout: 250,
        connectTimeout: 1000,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => 50,
      });
      client.on('error', () => undefined);
      clients.push(client);
      return client;
    }

    beforeAll(async () => {
      redis = await startPrivateRedis();
      proxy = await startTcpProxy({ target: `127.0.0.1:${redis.port}` });
    }, TIMEOUT);

    afterAll(async () => {
      for (const client of clients) {
        if (client.status === 'ready') await client.quit().catch(() => undefined);
        else if (client.status !== 'end') client.disconnect();
      }
    });

    it(
      'fails its commands while the proxy refuses and times them out while it is frozen, as Redis keeps answering directly; it is back after each restore',
      async () => {
        const through = gatewayLikeClient(proxy.url('redis'));
        const direct = gatewayLikeClient(redis.url);
        await until(() => through.status === 'ready' && direct.status === 'ready', 'both clients ready');
        await expect(through.set('proxy:key', 'v1')).resolves.toBe('OK');
        await expect(direct.get('proxy:key')).resolves.toBe('v1');

        await proxy.cut('refuse');
        await until(() => through.status !== 'ready', 'the client saw its connection go');
        await expect(through.ping()).rejects.toThrow();
        await expect(direct.ping()).resolves.toBe('PONG');

        await proxy.restore();
        await until(() => through.status === 'ready', 'the client reconnected through the proxy');
        await expect(through.get('proxy:key')).resolves.toBe('v1');

        await proxy.cut('blackhole', { openConnections: 'freeze' });
        await expect(through.ping()).rejects.toThrow(/timed out/i);
        expect(through.status).toBe('ready');
        await expect(direct.ping()).resolves.toBe('PONG');

        await proxy.restore();
        await until(async () => (await through.ping().catch(() => 'failed')) === 'PONG', 'PING through the thawed connection');
        await expect(through.get('proxy:key')).resolves.toBe('v1');
      },
      TIMEOUT,
    );
  });

  it(
    'stopAllTcpProxies stops every proxy it started',
    async () => {
      const proxy = await echoProxy();
      expect(runningTcpProxyPids()).toContain(proxy.pid);
      await stopAllTcpProxies();
      expect(runningTcpProxyPids()).toEqual([]);
      expect(await proxy.exited).toEqual({ code: 0, signal: null });
    },
    TIMEOUT,
  );
});
