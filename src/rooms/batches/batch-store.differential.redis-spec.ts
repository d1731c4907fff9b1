/**
 * The batch store exists twice: RedisBatchStore (the fleet: Lua scripts in ./lua) and
 * InProcessBatchStore (a gateway without Redis). This spec replays the same generated traces of
 * operations on both (create, begin, release, finish, cancel, read pages, discard, for two clients
 * sharing the pending limit) and asserts that every answer is the same, step by step. It ends
 * with what only time shows: a batch that ended expires BATCH_TTL_S later on both.
 *
 * A failure prints fast-check's seed (replay it with BATCH_STORE_SEED=<seed>) and the shrunk trace.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { RedisClients } from '../../../test/support/redis-clients.js';
import { startPrivateRedis, stopAllRedis, type TestRedis } from '../../../test/support/redis-server.js';
import { RedisKeys } from '../../redis/redis-keys.js';
import type { BatchStore } from './batch-store.js';
import { InProcessBatchStore } from './in-process-batch-store.js';
import { RedisBatchStore } from './redis-batch-store.js';
import { BATCH_ROOM_STATUSES, type RoomOutcome } from './room-batch.js';

const CLIENTS = ['team-a', 'team-b'];
const MAX_PENDING = 12;
const SETTINGS = { ttlSeconds: 600, unfinishedLifetimeSeconds: 3600 };
const T0 = 1_800_000_000_000;
const RUNS = Number(process.env.BATCH_STORE_RUNS ?? 400);

type Step =
  | { kind: 'create'; client: number; rooms: number; callback: boolean }
  | { kind: 'begin' | 'cancel' | 'discard' | 'summary'; batch: number; room: number }
  | { kind: 'release'; batch: number; room: number; mayHaveActed: boolean; failed: boolean }
  | { kind: 'finish'; batch: number; room: number; outcome: RoomOutcome }
  | { kind: 'page'; batch: number; cursor: number; limit: number; status: number };

const OUTCOMES: RoomOutcome[] = [
  { status: 'created', attributeSeq: 2, zegoRequestId: 'z-1' },
  { status: 'created', attributeSeq: 0, zegoRequestId: 'z-2', recovered: true },
  { status: 'failed', error: { statusCode: 409, message: 'The room already exists', zegoCode: 660300014 } },
  { status: 'failed', error: { statusCode: 500, message: 'Internal error' } },
];

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('create' as const), client: fc.nat(1), rooms: fc.integer({ min: 1, max: 7 }), callback: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('begin' as const), batch: fc.nat(5), room: fc.nat(7) }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('release' as const), batch: fc.nat(5), room: fc.nat(7), mayHaveActed: fc.boolean(), failed: fc.boolean() }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('finish' as const), batch: fc.nat(5), room: fc.nat(7), outcome: fc.constantFrom(...OUTCOMES) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('cancel' as const, 'discard' as const, 'summary' as const), batch: fc.nat(5), room: fc.constant(0) }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('page' as const), batch: fc.nat(5), cursor: fc.nat(8), limit: fc.integer({ min: 1, max: 4 }), status: fc.nat(4) }),
  },
);

/** The batches created so far on one side: client and id, by creation order. */
type Created = Array<{ client: string; batchId: string }>;

async function apply(store: BatchStore, step: Step, created: Created, index: number): Promise<unknown> {
  const now = T0 + index * 1000;
  if (step.kind === 'create') {
    const client = CLIENTS[step.client]!;
    const batchId = `00000000-0000-4000-8000-${String(created.length).padStart(12, '0')}`;
    const roomIds = Array.from({ length: step.rooms }, (_, i) => `room-${created.length}-${i}`);
    const result = await store.create(
      client,
      { batchId, createdAt: now, roomIds, requestId: `req-${index}`, ...(step.callback && { callbackUrl: 'https://hooks.example/x' }) },
      MAX_PENDING,
    );
    if (result.kind === 'created') created.push({ client, batchId });
    return result;
  }
  const target = created[step.batch % Math.max(1, created.length)];
  if (!target) return 'no batch yet';
  const { client, batchId } = target;
  switch (step.kind) {
    case 'begin':
      return store.beginRoom(client, batchId, step.room);
    case 'release':
      return store.releaseRoom(client, batchId, step.room, { mayHaveActed: step.mayHaveActed, failed: step.failed });
    case 'finish':
      return store.finishRoom(client, batchId, step.room, step.outcome, now);
    case 'cancel':
      return store.cancel(client, batchId, now);
    case 'discard':
      return store.discard(client, batchId);
    case 'summary':
      return [await store.summary(client, batchId), await store.delivery(client, batchId)];
    case 'page':
      return store.rooms(client, batchId, {
        cursor: step.cursor,
        limit: step.limit,
        ...(step.status < BATCH_ROOM_STATUSES.length && { status: BATCH_ROOM_STATUSES[step.status] }),
      });
  }
}

describe('RedisBatchStore and InProcessBatchStore', () => {
  let server: TestRedis;
  let redis: Redis;
  const clients = new RedisClients();
  let run = 0;

  beforeAll(async () => {
    server = await startPrivateRedis();
    redis = clients.plain(server.url);
  });
  afterAll(async () => {
    await clients.closeAll();
    await stopAllRedis();
  });

  it('answer every step of the same traces alike, and count the same rooms pending per client', async () => {
    const seed = process.env.BATCH_STORE_SEED === undefined ? undefined : Number(process.env.BATCH_STORE_SEED);
    await fc.assert(
      fc.asyncProperty(fc.array(stepArbitrary, { minLength: 1, maxLength: 40 }), async (steps) => {
        const keys = new RedisKeys(`diff-${++run}`);
        const shared = new RedisBatchStore(redis, keys, SETTINGS);
        const local = new InProcessBatchStore(SETTINGS, () => T0);
        const [sharedCreated, localCreated]: [Created, Created] = [[], []];
        for (const [index, step] of steps.entries()) {
          const [fromRedis, inProcess] = [await apply(shared, step, sharedCreated, index), await apply(local, step, localCreated, index)];
          expect({ step: index, answer: fromRedis }).toEqual({ step: index, answer: inProcess });
        }
        // The pending counters agree with the rooms pending, and between the two sides.
        for (const client of CLIENTS) {
          const pendingInRedis = Number((await redis.get(keys.batch(client, 'x').clientPending)) ?? 0);
          let pendingRooms = 0;
          for (const batch of sharedCreated.filter((b) => b.client === client)) pendingRooms += (await shared.summary(client, batch.batchId))?.pending ?? 0;
          expect({ client, counter: pendingInRedis }).toEqual({ client, counter: pendingRooms });
          const local429 = await local.create(client, { batchId: 'probe', createdAt: T0, roomIds: Array(MAX_PENDING - pendingRooms + 1).fill('p'), requestId: 'r' }, MAX_PENDING);
          expect(local429.kind).toBe('over-pending-limit');
        }
      }),
      {
        numRuns: RUNS,
        ...(seed !== undefined && { seed }),
        // Found by a CI run: cancelling a batch whose only room is on its way (Lua's -0 in HINCRBY).
        examples: [[[{ kind: 'create', client: 0, rooms: 1, callback: false }, { kind: 'begin', batch: 0, room: 0 }, { kind: 'cancel', batch: 0, room: 0 }]]],
      },
    );
  }, 120_000);

  it('let an ended batch expire BATCH_TTL_S after its end, and a batch that never ends after its lifetime', async () => {
    let clock = T0;
    const local = new InProcessBatchStore(SETTINGS, () => clock);
    const keys = new RedisKeys(`ttl-${++run}`);
    const shared = new RedisBatchStore(redis, keys, SETTINGS);
    for (const store of [shared, local]) {
      await store.create('team-a', { batchId: 'b-ended', createdAt: T0, roomIds: ['r0'], requestId: 'q' }, MAX_PENDING);
      await store.create('team-a', { batchId: 'b-open', createdAt: T0, roomIds: ['r0'], requestId: 'q' }, MAX_PENDING);
      await store.finishRoom('team-a', 'b-ended', 0, OUTCOMES[0]!, T0);
    }
    const ttl = (batchId: string): Promise<number> => redis.ttl(keys.batch('team-a', batchId).meta);
    expect(await ttl('b-ended')).toBeGreaterThan(SETTINGS.ttlSeconds - 5);
    expect(await ttl('b-ended')).toBeLessThanOrEqual(SETTINGS.ttlSeconds);
    expect(await ttl('b-open')).toBeGreaterThan(SETTINGS.unfinishedLifetimeSeconds - 5);
    clock += SETTINGS.ttlSeconds * 1000 - 1;
    expect(await local.summary('team-a', 'b-ended')).toBeDefined();
    clock += 1;
    expect(await local.summary('team-a', 'b-ended')).toBeUndefined();
    expect(await local.summary('team-a', 'b-open')).toBeDefined();
    clock = T0 + SETTINGS.unfinishedLifetimeSeconds * 1000;
    expect(await local.summary('team-a', 'b-open')).toBeUndefined();
  });
});
