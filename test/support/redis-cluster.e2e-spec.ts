/**
 * The harness in test/support/redis-cluster.ts, with real processes: a cluster forms and serves
 * keys through an ioredis Cluster client, each on the primary primaryFor() names; keySlot agrees
 * with CLUSTER KEYSLOT; a paused primary hangs; a client reading from replicas knows them all as
 * soon as the cluster is ok; a killed primary's replica is promoted and serves its keys; without a
 * replica a killed primary's slots go unserved until restart() brings it back; a password is
 * required when set; nothing is left running.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createConnection } from 'node:net';
import { Cluster, type ClusterOptions, Redis } from 'ioredis';
import { until } from './async-probes.js';
import {
  type ClusterNode,
  keySlot,
  runningRedisClusterPids,
  startRedisCluster,
  stopAllRedisClusters,
  type TestRedisCluster,
} from './redis-cluster.js';

const TIMEOUT = 30_000;

/** Clients opened by a test, closed after it (also when it failed). */
const clients: Array<Redis | Cluster> = [];

function clusterClient(cluster: TestRedisCluster, options: ClusterOptions = {}): Cluster {
  const client = new Cluster([...cluster.startupNodes], {
    ...options,
    redisOptions: { password: cluster.password, ...options.redisOptions },
  });
  client.on('error', () => {
    // failures surface through the rejected commands the tests assert on
  });
  clients.push(client);
  return client;
}

/** A plain client of one node: no cluster redirections followed, no reconnects. */
function nodeClient(node: ClusterNode, password?: string): Redis {
  const client = new Redis({
    host: node.host,
    port: node.port,
    password,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {
    // as above
  });
  clients.push(client);
  return client;
}

/** One plain client per node of the cluster. */
function nodeClients(cluster: TestRedisCluster): Map<ClusterNode, Redis> {
  return new Map(cluster.nodes.map((node) => [node, nodeClient(node, cluster.password)]));
}

async function clusterInfo(client: Redis): Promise<string> {
  return String(await client.call('CLUSTER', 'INFO'));
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

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterEach(async () => {
  // A client whose connection already ended is left alone: disconnect() on it would arm ioredis's
  // disconnect timer on an already-closed socket, which keeps jest from exiting.
  await Promise.all(
    clients.splice(0).map(async (client) => {
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else if (client.status !== 'end') client.disconnect();
    }),
  );
});

afterAll(async () => {
  await stopAllRedisClusters();
});

describe('a cluster of three primaries', () => {
  let cluster: TestRedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster({ primaries: 3 });
  }, TIMEOUT);
  afterAll(async () => {
    await cluster?.stopAll();
  });

  it(
    'forms with every node a primary with its own node id, ports and seeds, and cluster_state:ok on each',
    async () => {
      expect(cluster.nodes).toHaveLength(3);
      expect(cluster.primaries()).toHaveLength(3);
      const ports = cluster.nodes.map((node) => node.port);
      expect(new Set([...ports, ...cluster.nodes.map((node) => node.busPort)]).size).toBe(6);
      expect(cluster.seeds).toBe(ports.map((port) => `127.0.0.1:${port}`).join(','));
      expect(cluster.startupNodes).toEqual(ports.map((port) => ({ host: '127.0.0.1', port })));
      for (const [node, direct] of nodeClients(cluster)) {
        expect(node.id).toMatch(/^[0-9a-f]{40}$/);
        expect(node.role).toBe('primary');
        expect(node.isRunning()).toBe(true);
        await expect(direct.call('CLUSTER', 'MYID')).resolves.toBe(node.id);
        const info = await clusterInfo(direct);
        expect(info).toMatch(/^cluster_state:ok\r?$/m);
        expect(info).toMatch(/^cluster_slots_ok:16384\r?$/m);
      }
    },
    TIMEOUT,
  );

  it(
    'serves keys on every primary through an ioredis Cluster client, each stored where primaryFor() says',
    async () => {
      const client = clusterClient(cluster);
      const keys = Array.from({ length: 30 }, (_, index) => `harness:key:${index}`);
      for (const key of keys) await expect(client.set(key, `value of ${key}`)).resolves.toBe('OK');
      for (const key of keys) await expect(client.get(key)).resolves.toBe(`value of ${key}`);

      const direct = nodeClients(cluster);
      const servedBy = new Set<ClusterNode>();
      for (const key of keys) {
        const primary = await cluster.primaryFor(key);
        servedBy.add(primary);
        // The primary holds it itself; any other primary redirects to it.
        await expect(direct.get(primary)!.get(key)).resolves.toBe(`value of ${key}`);
        const other = cluster.nodes.find((node) => node !== primary)!;
        await expect(direct.get(other)!.get(key)).rejects.toThrow(`MOVED ${keySlot(key)} 127.0.0.1:${primary.port}`);
      }
      expect(servedBy.size).toBe(3);
    },
    TIMEOUT,
  );

  it(
    'keySlot() matches CLUSTER KEYSLOT, with and without hash tags',
    async () => {
      const redis = nodeClient(cluster.nodes[0]);
      const serverSlot = async (key: string | Buffer): Promise<number> => Number(await redis.call('CLUSTER', 'KEYSLOT', key));

      // The check value of CRC16/XMODEM, which the Redis Cluster specification quotes.
      expect(keySlot('123456789')).toBe(0x31c3);
      expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
      expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
      expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar')); // an empty tag: the whole key is hashed
      const examples = [
        '', 'foo', 'user:1000', '{user1000}.following', 'foo{}{bar}', 'foo{{bar}}zap', 'foo{bar}{zap}',
        '{}', '}{', '{', 'a{b', 'room:{team-42}:calls', 'clé-é', '表情😀', Buffer.from([0x00, 0xff, 0x7b, 0x01, 0x7d]),
      ];
      for (const key of examples) expect({ key, slot: keySlot(key) }).toEqual({ key, slot: await serverSlot(key) });

      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.constantFrom('a', 'b', 'z', '{', '}', ':', 'é', '😀', '0'), { maxLength: 16 }),
          async (parts) => {
            const key = parts.join('');
            expect({ key, slot: keySlot(key) }).toEqual({ key, slot: await serverSlot(key) });
          },
        ),
        { numRuns: 200 },
      );
    },
    TIMEOUT,
  );

  it(
    'pause() makes a primary hang (a command times out) and resume() makes it answer again',
    async () => {
      const client = clusterClient(cluster, { enableOfflineQueue: false, redisOptions: { commandTimeout: 200 } });
      const key = 'harness:paused';
      await until(() => client.status === 'ready', 'the Cluster client to be ready');
      await client.set(key, 'before');
      const primary = await cluster.primaryFor(key);

      cluster.pause(primary);
      try {
        expect(primary.isRunning()).toBe(true);
        await expect(client.get(key)).rejects.toThrow(/timed out/i);
      } finally {
        cluster.resume(primary);
      }
      await until(async () => (await client.get(key).catch(() => undefined)) === 'before', 'the key to be served again');
      await cluster.waitUntilOk();
    },
    TIMEOUT,
  );
});

describe('one replica per primary', () => {
  let cluster: TestRedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 1 });
  }, TIMEOUT);
  afterAll(async () => {
    await cluster?.stopAll();
  });

  it(
    'forms with three primaries, each followed by one replica',
    async () => {
      expect(cluster.nodes).toHaveLength(6);
      const primaries = cluster.primaries();
      expect(primaries).toHaveLength(3);
      const replicas = primaries.flatMap((primary) => cluster.replicasOf(primary));
      expect(replicas).toHaveLength(3);
      for (const replica of replicas) {
        expect(replica.role).toBe('replica');
        const replication = String(await nodeClient(replica).info('replication'));
        expect(replication).toMatch(/^master_link_status:up\r?$/m);
        const primary = primaries.find((candidate) => candidate.id === replica.primaryId)!;
        expect(replication).toMatch(new RegExp(`^master_port:${primary.port}\\r?$`, 'm'));
      }
    },
    TIMEOUT,
  );

  it(
    'a client reading from replicas knows every replica at once, also those whose primary took no write yet',
    async () => {
      const reads = clusterClient(cluster, { scaleReads: 'slave' });
      const direct = nodeClients(cluster);
      const servedGets = async (node: ClusterNode): Promise<number> =>
        Number(/^cmdstat_get:calls=(\d+)/m.exec(String(await direct.get(node)!.info('commandstats')))?.[1] ?? 0);
      for (const primary of cluster.primaries()) {
        let key = '';
        for (let index = 0; key === ''; index++) {
          if ((await cluster.primaryFor(`harness:read:${index}`)) === primary) key = `harness:read:${index}`;
        }
        const [replica] = cluster.replicasOf(primary);
        const before = await servedGets(replica);
        await expect(reads.get(key)).resolves.toBeNull();
        await expect(servedGets(replica)).resolves.toBe(before + 1);
      }
    },
    TIMEOUT,
  );

  it(
    'killing the primary serving a key promotes its replica, which serves the key; the old primary returns as its replica',
    async () => {
      const client = clusterClient(cluster);
      const key = 'harness:failover';
      await client.set(key, 'written before the failover');
      const primary = await cluster.primaryFor(key);
      const [replica] = cluster.replicasOf(primary);
      // The write reaches the replica before its primary dies.
      await expect(nodeClient(primary).wait(1, 5_000)).resolves.toBe(1);

      await cluster.kill(primary);
      expect(primary.isRunning()).toBe(false);
      await expect(connectOutcome(primary.port)).resolves.toBe('ECONNREFUSED');

      const promoted = await cluster.waitForFailover(primary);
      expect(promoted).toBe(replica);
      expect(promoted.role).toBe('primary');
      await expect(cluster.primaryFor(key)).resolves.toBe(promoted);
      await until(
        async () => (await client.get(key).catch(() => undefined)) === 'written before the failover',
        'the Cluster client to read the key from the promoted replica',
      );
      await expect(client.set(key, 'written after the failover')).resolves.toBe('OK');
      await expect(nodeClient(promoted).get(key)).resolves.toBe('written after the failover');

      await cluster.restart(primary);
      await cluster.waitUntilOk();
      expect(primary.role).toBe('replica');
      expect(primary.primaryId).toBe(promoted.id);
      await expect(cluster.primaryFor(key)).resolves.toBe(promoted);
    },
    TIMEOUT,
  );
});

describe('no replica, and a password', () => {
  const password = 'cluster-harness-password';
  let cluster: TestRedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster({ primaries: 3, password });
  }, TIMEOUT);
  afterAll(async () => {
    await cluster?.stopAll();
  });

  it(
    'refuses commands without the password and serves a Cluster client that has it',
    async () => {
      expect(cluster.password).toBe(password);
      await expect(nodeClient(cluster.nodes[0]).ping()).rejects.toThrow(/NOAUTH/);
      const client = clusterClient(cluster);
      await expect(client.set('harness:auth', 'yes')).resolves.toBe('OK');
      await expect(client.get('harness:auth')).resolves.toBe('yes');
    },
    TIMEOUT,
  );

  it(
    'a killed primary leaves its slots unserved (CLUSTERDOWN) until restart() brings it back, empty',
    async () => {
      const client = clusterClient(cluster, { enableOfflineQueue: false, redisOptions: { commandTimeout: 500 } });
      const key = 'harness:lost';
      await until(() => client.status === 'ready', 'the Cluster client to be ready');
      await client.set(key, 'gone with its primary');
      const primary = await cluster.primaryFor(key);
      const survivor = nodeClient(cluster.nodes.find((node) => node !== primary)!, password);

      await cluster.kill(primary);
      expect(cluster.replicasOf(primary)).toEqual([]);
      await until(
        async () => /^cluster_state:fail\r?$/m.test(await clusterInfo(survivor)),
        'the surviving nodes to report cluster_state:fail',
      );
      await expect(survivor.get(key)).rejects.toThrow(/^CLUSTERDOWN/);
      await expect(client.get(key)).rejects.toThrow();
      await expect(cluster.waitUntilOk(500)).rejects.toThrow(/cluster_state:fail/);

      await cluster.restart(primary);
      await cluster.waitUntilOk();
      expect(primary.role).toBe('primary');
      await expect(cluster.primaryFor(key)).resolves.toBe(primary);
      await until(() => client.get(key).then(() => true, () => false), 'the key to be served again');
      // No persistence: the restarted primary came back empty.
      await expect(client.get(key)).resolves.toBeNull();
      await expect(client.set(key, 'written after the restart')).resolves.toBe('OK');
    },
    TIMEOUT,
  );
});

describe('cleanup', () => {
  it(
    'stopAll() stops one cluster; stopAllRedisClusters() stops every one left, paused nodes included',
    async () => {
      const [first, second] = await Promise.all([startRedisCluster(), startRedisCluster()]);
      const pids = runningRedisClusterPids();
      expect(pids).toHaveLength(6);

      await first.stopAll();
      for (const node of first.nodes) {
        expect(node.isRunning()).toBe(false);
        await expect(connectOutcome(node.port)).resolves.toBe('ECONNREFUSED');
      }
      expect(runningRedisClusterPids()).toHaveLength(3);
      await expect(first.restart(first.nodes[0])).rejects.toThrow(/stopped/);

      second.pause(second.nodes[1]);
      await stopAllRedisClusters();
      for (const node of second.nodes) {
        expect(node.isRunning()).toBe(false);
        await expect(connectOutcome(node.port)).resolves.toBe('ECONNREFUSED');
      }
      expect(runningRedisClusterPids()).toEqual([]);
      expect(pids.filter(processExists)).toEqual([]);
    },
    TIMEOUT,
  );
});
