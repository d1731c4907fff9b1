/**
 * The gateway on a real Redis Cluster (three primaries, no replicas) through REDIS_CLUSTER_NODES:
 * every store's script runs there (a key of another slot would be refused with CROSSSLOT), and a
 * lost primary is Redis down for the stores whose keys it served, under the one Redis-down policy;
 * readiness and the mode follow the vendor budget's slot, whatever the other nodes say.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
import { until } from './support/async-probes.js';
import { backToShared, createRoom, limiterModeChanges, waitForLimiterMode } from './support/fleet.js';
import type { GatewayProcess, LogLine } from './support/gateway-process.js';
import { keySlot, startRedisCluster, stopAllRedisClusters, type ClusterNode, type TestRedisCluster } from './support/redis-cluster.js';
import { metricSum, scrapeMetrics } from './support/prometheus-text.js';
import { scenario } from './support/scenario.js';
import { RedisKeys } from '../src/redis/redis-keys.js';
import { DEFAULT_KEY_PREFIX } from '../src/redis/redis.settings.js';

const APP_ID = 1618033988;
const SECRET = 'SENTINEL-secret-cluster-e2e-3f9a1c7e5b20d846';
const KEY = 'sk-SENTINEL-cluster-e2e-7b2d9f04c61e3a58';
const CLIENT = 'svc-cluster';
const keys = new RedisKeys(DEFAULT_KEY_PREFIX);
const budget = keys.outboundBudget(APP_ID);

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { [CLIENT]: KEY },
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'cluster-operator' },
});

let cluster: TestRedisCluster;
let reader: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 0 });
  reader = new Cluster(cluster.startupNodes.map(({ host, port }) => ({ host, port })), { enableOfflineQueue: true });
}, 60_000);

afterAll(async () => {
  reader?.disconnect();
  await stopAllRedisClusters();
});

async function ready(gateway: GatewayProcess): Promise<{ status: number; body: { details?: { outboundLimiter?: { status?: string; mode?: string; redis?: string } } } }> {
  const response = await fetch(`${gateway.url}/health/ready`);
  return { status: response.status, body: (await response.json()) as never };
}

function post(gateway: GatewayProcess, roomId: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gateway.url}/rooms`, {
    method: 'POST',
    headers: { ...headers, Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ roomId, roomName: 'cluster' }),
    signal: AbortSignal.timeout(15_000),
  });
}

/** Kills the primary serving the budget's slot, runs `during`, then brings it back and waits for the cluster. */
async function withBudgetPrimaryDown(during: () => Promise<void>): Promise<void> {
  const primary = await cluster.primaryFor(budget.slots);
  await cluster.kill(primary);
  try {
    await during();
  } finally {
    await cluster.restart(primary);
    await cluster.waitUntilOk();
  }
}

/**
 * Moves one slot, with its keys, from the primary serving it to `target`, as a resharding does:
 * while it moves, commands for it are redirected with ASK (keys already moved) or TRYAGAIN (a
 * script's keys split between the two), then with MOVED once the slot is the target's. `between`
 * runs after each step, so that requests meet every state of the move.
 */
async function moveSlot(slot: number, target: ClusterNode, between: () => Promise<void>): Promise<void> {
  const source = await cluster.primaryFor(budget.slots);
  const connect = (node: ClusterNode) => new Redis({ host: node.host, port: node.port });
  const [from, to] = [connect(source), connect(target)];
  try {
    await to.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
    await from.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
    await between();
    for (;;) {
      const names = (await from.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
      if (names.length === 0) break;
      await from.call('MIGRATE', target.host, target.port, '', 0, 5000, 'REPLACE', 'KEYS', ...names);
      await between();
    }
    for (const node of cluster.primaries()) {
      const client = connect(node);
      await client.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id).finally(() => client.disconnect());
    }
  } finally {
    from.disconnect();
    to.disconnect();
  }
}

describe('a gateway on a Redis Cluster', () => {
  it('runs the scheduler, the client quota and the Idempotency-Key store there, each in its own slot', async () => {
    const gateway = await s.startGateway({ REDIS_CLUSTER_NODES: cluster.seeds });
    await waitForLimiterMode(gateway, 'shared');

    const first = await post(gateway, 'cluster-1', { 'Idempotency-Key': 'cluster-key-1' });
    expect(first.status).toBe(201);
    expect(first.headers.get('x-ratelimit-limit')).toBe('10');
    const replay = await post(gateway, 'cluster-1', { 'Idempotency-Key': 'cluster-key-1' });
    expect(replay.status).toBe(201);
    expect(await replay.json()).toEqual(await first.json());
    expect(s.fake.calls.filter((c) => c.action === 'CreateRoom')).toHaveLength(1);

    // The keys are on the cluster: the fleet's membership (leases renewed every 125 ms) and the record.
    expect(await reader.exists(budget.members)).toBe(1);
    expect(await reader.exists(keys.idempotencyRecord(CLIENT, 'POST /rooms', 'cluster-key-1'))).toBe(1);

    const { status, body } = await ready(gateway);
    expect(status).toBe(200);
    expect(body.details?.outboundLimiter).toMatchObject({ status: 'up', mode: 'shared', redis: 'answers for the vendor budget' });
  });

  it("goes on its own share while the budget's primary is lost (other nodes still answering), and back by itself", async () => {
    const gateway = await s.startGateway({ REDIS_CLUSTER_NODES: cluster.seeds });
    await waitForLimiterMode(gateway, 'shared');
    const mark = gateway.logMark();
    let local: LogLine | undefined;
    await withBudgetPrimaryDown(async () => {
      const answer = await createRoom(gateway.url, KEY, 'cluster-local-1', 15_000);
      expect(answer.status).toBe(201);
      local = await waitForLimiterMode(gateway, 'local', { since: mark });
      const { status, body } = await ready(gateway);
      expect(status).toBe(200);
      expect(body.details?.outboundLimiter).toMatchObject({ status: 'degraded', mode: 'local' });
      expect(body.details?.outboundLimiter?.redis).toMatch(/^unreachable: /);
      const metrics = await scrapeMetrics(gateway.url);
      expect(metricSum(metrics, 'zim_gateway_outbound_limiter_mode', { mode: 'local' })).toBe(1);
      expect(metricSum(metrics, 'zim_gateway_outbound_limiter_mode', { mode: 'shared' })).toBe(0);
    });
    await backToShared(gateway, gateway.logLines().indexOf(local!));
    expect((await createRoom(gateway.url, KEY, 'cluster-back-1', 15_000)).status).toBe(201);
    expect((await ready(gateway)).body.details?.outboundLimiter).toMatchObject({ status: 'up', mode: 'shared' });
  });

  it('answers 503 at once under RATE_LIMIT_ON_REDIS_DOWN=reject while the slot is unserved, never hangs, and is unready', async () => {
    const gateway = await s.startGateway({ REDIS_CLUSTER_NODES: cluster.seeds, RATE_LIMIT_ON_REDIS_DOWN: 'reject' });
    await waitForLimiterMode(gateway, 'shared');
    const mark = gateway.logMark();
    let rejecting: LogLine | undefined;
    await withBudgetPrimaryDown(async () => {
      const answers = await Promise.all(['cluster-reject-1', 'cluster-reject-2'].map((room) => createRoom(gateway.url, KEY, room, 15_000)));
      // Within the call deadline, and nothing but the policy's answer.
      for (const answer of answers) {
        expect(answer.status).toBe(503);
        expect(answer.retryAfter).toBe('1');
        expect(answer.latencyMs).toBeLessThan(10_000);
      }
      expect((await ready(gateway)).status).toBe(503);
      rejecting = await waitForLimiterMode(gateway, 'reject', { since: mark });
    });
    await backToShared(gateway, gateway.logLines().indexOf(rejecting!));
    expect((await createRoom(gateway.url, KEY, 'cluster-reject-back', 15_000)).status).toBe(201);
  });

  it("keeps answering while the budget's slot moves to another primary (ASK, TRYAGAIN, then MOVED), and ends on the new one", async () => {
    const gateway = await s.startGateway({ REDIS_CLUSTER_NODES: cluster.seeds });
    await waitForLimiterMode(gateway, 'shared');
    const mark = gateway.logMark();
    const slot = keySlot(budget.slots);
    const source = await cluster.primaryFor(budget.slots);
    const target = cluster.primaries().find((node) => node.id !== source.id)!;
    const answers: Array<Awaited<ReturnType<typeof createRoom>>> = [];
    let moved = false;
    // Requests keep coming while the slot moves.
    const traffic = (async () => {
      for (let i = 0; !moved; i++) answers.push(await createRoom(gateway.url, KEY, `cluster-move-${i}`, 15_000));
    })();
    await moveSlot(slot, target, async () => {
      const before = answers.length;
      await until(() => answers.length >= before + 2, 'two requests answered in this state of the move');
    });
    moved = true;
    await traffic;
    const changes = limiterModeChanges(gateway, mark);
    // A script whose keys are split between the two nodes gets TRYAGAIN; longer than its retries,
    // it is Redis down for the scheduler, under the policy: served in process for a moment.
    process.stdout.write(`slot ${slot} moved with ${answers.length} requests on the way; mode changes ${JSON.stringify(changes)}\n`);
    expect((await cluster.primaryFor(budget.slots)).id).toBe(target.id);
    expect(answers.filter((a) => !(a.status === 201 || (a.status === 429 && /^[1-9]\d*$/.test(a.retryAfter ?? ''))))).toEqual([]);
    expect(Math.max(...answers.map((a) => a.latencyMs))).toBeLessThan(10_000);
    if (changes.includes('local')) await waitForLimiterMode(gateway, 'shared', { since: mark + 1, timeoutMs: 10_000 });
    // On the slot's new primary, by itself.
    await until(async () => (await ready(gateway)).body.details?.outboundLimiter?.mode === 'shared', 'shared mode again');
    expect((await createRoom(gateway.url, KEY, 'cluster-after-move', 15_000)).status).toBe(201);
    expect(await reader.exists(budget.members)).toBe(1);
  });
});
