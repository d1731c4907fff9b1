/**
 * Batches on Redis (RedisBatchStore, BullMQ), with real gateway processes sharing a private
 * redis-server and the fake vendor's record: a batch submitted to one replica is read on the other
 * and created once per room by whichever replica takes each; its keys sit under the client's hash
 * tag and expire BATCH_TTL_S after it ends; without Redis a submission is a 503 naming the batch
 * store even under RATE_LIMIT_ON_REDIS_DOWN=local (test/fleet/room-batches shows queued rooms
 * resuming after a restart of a Redis that keeps its data).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { RedisKeys } from '../src/redis/redis-keys.js';
import { callbackSignature } from '../src/rooms/batches/batch-callback-sender.js';
import { metricSamples, metricSum, scrapeMetrics } from './support/prometheus-text.js';
import { until } from './support/async-probes.js';
import { ZimCode } from './fake-zim/fake-zim-server.js';
import { batchClient, roomsNamed } from './support/batch-client.js';
import { untilEveryReplicaShared } from './support/fleet.js';
import type { GatewayProcess } from './support/gateway-process.js';
import { actedAnswersFor, callsForRoom } from './support/room-calls.js';
import { scenario } from './support/scenario.js';

const KEY = 'sk-SENTINEL-batches-shared-7a31';
const CALLBACK_SECRET = 'SENTINEL-shared-callback-5e0a9b7c';
const PREFIX = `batches-${randomUUID().slice(0, 8)}`;

const s = scenario({
  fakeZim: { appId: 1732050807, serverSecret: 'SENTINEL-secret-batches-shared-91c2' },
  apiKeys: { 'team-s': KEY },
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'batch-operator', CLIENT_RATE_LIMIT: '1000', BATCH_TTL_S: '120', BATCH_CONCURRENCY: '2' },
  redis: 'private',
});
let a: GatewayProcess;
let b: GatewayProcess;
const onA = batchClient(() => a, KEY);
const onB = batchClient(() => b, KEY);
const actedAnswers = (roomId: string): Array<number | null> => actedAnswersFor(s.fake.calls, roomId);
const onceEach = (rooms: readonly { roomId: string }[]): void =>
  expect(rooms.map((room) => actedAnswers(room.roomId))).toEqual(rooms.map(() => [ZimCode.success]));
const byReplica = (gateway: GatewayProcess, batchId: string): number =>
  gateway.logLines().filter((line) => line.context === 'BatchRoom' && line.batchId === batchId && line.status === 'created').length;

/** Takes every callback; records what it got. */
const received: Array<{ body: string; signature: string | undefined }> = [];
const receiver = createServer((request, response) => {
  let body = '';
  request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
  request.on('end', () => {
    received.push({ body, signature: request.headers['x-signature'] as string | undefined });
    // The first delivery is refused: the retry comes from whichever replica works the callback queue.
    response.statusCode = received.length === 1 ? 503 : 200;
    response.end();
  });
});
beforeAll(() => new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve)));
afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
const receiverPort = (): number => (receiver.address() as AddressInfo).port;

const sharedEnv = () => ({
  REDIS_URL: s.redis.url,
  REDIS_KEY_PREFIX: PREFIX,
  RATE_LIMIT_ON_REDIS_DOWN: 'local',
  BATCH_CALLBACK_HOSTS: `127.0.0.1:${receiverPort()}`,
  BATCH_CALLBACK_SECRET: CALLBACK_SECRET,
});

beforeAll(async () => {
  [a, b] = await Promise.all([s.startGateway(sharedEnv()), s.startGateway(sharedEnv())]);
  await untilEveryReplicaShared([a, b]);
}, 60_000);

describe('a batch on Redis', () => {
  it('is read on either replica and created once per room, the rooms shared out between the replicas', async () => {
    const rooms = roomsNamed('shared', 40);
    const accepted = await onA.submit({ rooms }, { 'X-Request-Id': 'batch-shared-1' });
    expect(accepted.status).toBe(202);
    const { batchId } = accepted.body as { batchId: string };
    const ended = await onB.untilEnded(batchId);
    expect(ended).toMatchObject({ status: 'done', created: 40, failed: 0, pending: 0 });
    onceEach(rooms);
    await until(() => byReplica(a, batchId) + byReplica(b, batchId) === 40, 'a log line per room');
    expect(byReplica(a, batchId)).toBeGreaterThan(0);
    expect(byReplica(b, batchId)).toBeGreaterThan(0);
    // Each room's line keeps the batch's request id and names the room.
    const line = [...a.logLines(), ...b.logLines()].find((l) => l.context === 'BatchRoom' && l.batchId === batchId)!;
    expect(line).toMatchObject({ requestId: 'batch-shared-1', roomId: expect.stringMatching(/^shared-\d+$/), client: 'team-s' });
  });

  it('keeps its keys under the client hash tag, expiring BATCH_TTL_S after it ends, and replays its key on the other replica', async () => {
    const key = `replay-${randomUUID()}`;
    const body = { rooms: roomsNamed('ttl', 3) };
    const first = await onA.submit(body, { 'Idempotency-Key': key });
    const again = await onB.submit(body, { 'Idempotency-Key': key });
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    const { batchId } = first.body as { batchId: string };
    await onA.untilEnded(batchId);
    const redis = new Redis(s.redis.url);
    try {
      const keys = new RedisKeys(PREFIX).batch('team-s', batchId);
      for (const name of [keys.meta, keys.rooms]) {
        const ttl = await redis.ttl(name);
        expect(ttl).toBeGreaterThan(100);
        expect(ttl).toBeLessThanOrEqual(120);
      }
      // Every room ended: the client has no room left pending.
      expect(await redis.exists(keys.clientPending)).toBe(0);
    } finally {
      redis.disconnect();
    }
  });

  it('delivers the callback once through the fleet\'s queue, retried after a refusal, and counts the batch in /metrics', async () => {
    const rooms = roomsNamed('callback', 4);
    const { batchId } = (await onA.submit({ rooms, callbackUrl: `http://127.0.0.1:${receiverPort()}/done` })).body as { batchId: string };
    await onB.untilEnded(batchId);
    await until(() => received.length >= 2, 'the callback retried and taken', 15_000);
    expect(received).toHaveLength(2);
    for (const delivery of received) expect(delivery.signature).toBe(callbackSignature(CALLBACK_SECRET, delivery.body));
    expect(JSON.parse(received[1]!.body)).toMatchObject({ batchId, status: 'done', created: 4 });

    const metrics = await Promise.all([a, b].map((g) => scrapeMetrics(g.url)));
    const sum = (name: string, labels: Record<string, string>): number => metrics.reduce((total, m) => total + metricSum(m, name, labels), 0);
    expect(sum('zim_gateway_batch_rooms_total', { client: 'team-s', event: 'created' })).toBeGreaterThanOrEqual(4);
    expect(sum('zim_gateway_batch_rooms_accepted_total', { client: 'team-s' })).toBeGreaterThanOrEqual(4);
    expect(sum('zim_gateway_batch_duration_seconds_count', { status: 'done' })).toBeGreaterThanOrEqual(1);
    // Nothing waits now; Redis's default policy (noeviction) keeps queued rooms.
    expect(metricSamples(metrics[0]!, 'zim_gateway_batch_rooms_waiting', { client: 'team-s' }).map((m) => m.value)).toEqual([0]);
    expect(metricSamples(metrics[0]!, 'zim_gateway_redis_eviction_unsafe', {}).map((m) => [m.labels.policy, m.value])).toEqual([['noeviction', 0]]);
  });

  it('warns and shows it in /metrics when Redis may evict queued rooms', async () => {
    const redis = new Redis(s.redis.url);
    try {
      await redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
      const late = await s.startGateway(sharedEnv());
      await late.waitForLog((line) => String(line.message).includes('maxmemory-policy is allkeys-lru'), { timeoutMs: 10_000 });
      await until(async () => metricSum(await scrapeMetrics(late.url), 'zim_gateway_redis_eviction_unsafe', { policy: 'allkeys-lru' }) === 1, 'the gauge');
      await late.stop();
    } finally {
      await redis.config('SET', 'maxmemory-policy', 'noeviction');
      redis.disconnect();
    }
  });

  it('stops taking rooms at SIGTERM, finishing or handing back those in hand within the grace; nothing is lost or sent twice', async () => {
    s.fake.setAnswerTime({ minMs: 150, maxMs: 150 });
    const leaving = await s.startGateway({ ...sharedEnv(), SHUTDOWN_GRACE_MS: '1000', LOG_LEVEL: 'debug' });
    await untilEveryReplicaShared([a, b, leaving]);
    const rooms = roomsNamed('rolling', 40);
    const { batchId } = (await batchClient(leaving, KEY).submit({ rooms })).body as { batchId: string };
    await until(() => byReplica(leaving, batchId) > 0, 'the leaving replica working the batch');
    const stoppingAt = performance.now();
    expect(await leaving.stop()).toBe(0);
    // Grace, then the HTTP drain and the modules: the rooms in hand did not hold the exit up.
    expect(performance.now() - stoppingAt).toBeLessThan(4_000);
    s.fake.setAnswerTime(null);
    const ended = await onA.untilEnded(batchId);
    expect(ended).toMatchObject({ status: 'done', created: 40, failed: 0 });
    onceEach(rooms);
    // Every room the leaving replica began either ended there or was handed back and ended elsewhere.
    await until(() => byReplica(leaving, batchId) + byReplica(a, batchId) + byReplica(b, batchId) === 40, 'a log line per room');
  }, 60_000);

  it('is refused with 503 naming the batch store while Redis is down, and accepted again once it is back', async () => {
    s.fake.setAnswerTime({ minMs: 100, maxMs: 100 });
    const rooms = roomsNamed('outage', 30);
    const { batchId } = (await onA.submit({ rooms })).body as { batchId: string };
    await until(() => rooms.some((room) => callsForRoom(s.fake.calls, room.roomId).length > 0), 'a first room sent');
    await s.redis.stop();
    const refused = await onA.submit({ rooms: roomsNamed('during-outage', 2) });
    expect(refused.status).toBe(503);
    expect(refused.body.message).toMatch(/batch store \(Redis\)/);
    expect(refused.headers.get('retry-after')).toBe('1');
    const read = await onB.get(batchId);
    expect(read.status).toBe(503);
    // Single rooms go on under the local policy meanwhile.
    const single = await fetch(`${a.url}/rooms`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ roomId: 'single-during-outage' }),
    });
    expect(single.status).toBe(201);
    await s.redis.restart();
    s.fake.setAnswerTime(null);
    await untilEveryReplicaShared([a, b]);
    const after = await onA.submit({ rooms: roomsNamed('after-outage', 2) });
    expect(after.status).toBe(202);
    await onB.untilEnded((after.body as { batchId: string }).batchId);
  }, 60_000);
});
