import type { RedisClient } from '../../redis/redis-connection.js';
import { LuaScript } from '../../redis/lua-script.js';
import type { RedisKeys } from '../../redis/redis-keys.js';
import type { BatchDelivery, BatchStore, CreateBatchResult, NewBatch, RoomBegin, RoomRelease, RoomsQuery } from './batch-store.js';
import { pendingRoomJson, roomView, summaryOf, type StoredBatchMeta, type StoredRoom } from './stored-batch.js';
import type { BatchRoomsPage, BatchSummary, RoomOutcome } from './room-batch.js';

const CREATE = LuaScript.load(new URL('./lua/batch-create.lua', import.meta.url));
const DISCARD = LuaScript.load(new URL('./lua/batch-discard.lua', import.meta.url));
const BEGIN = LuaScript.load(new URL('./lua/batch-room-begin.lua', import.meta.url));
const RELEASE = LuaScript.load(new URL('./lua/batch-room-release.lua', import.meta.url));
const FINISH = LuaScript.load(new URL('./lua/batch-room-finish.lua', import.meta.url));
const CANCEL = LuaScript.load(new URL('./lua/batch-cancel.lua', import.meta.url));
const PAGE = LuaScript.load(new URL('./lua/batch-rooms-page.lua', import.meta.url));

/**
 * The fleet's batches in Redis: a meta hash and a rooms hash per batch, beside the client's count of
 * rooms not yet sent, changed only by the scripts in ./lua (each states the invariant it keeps).
 * Commands fail fast while Redis is away; callers answer 503 (the batch store has no fallback).
 */
export class RedisBatchStore implements BatchStore {
  readonly mode = 'shared';

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly settings: { readonly ttlSeconds: number; readonly unfinishedLifetimeSeconds: number },
  ) {}

  async create(client: string, batch: NewBatch, maxPendingRooms: number): Promise<CreateBatchResult> {
    const k = this.keys.batch(client, batch.batchId);
    const reply = (await CREATE.run(
      this.redis,
      [k.meta, k.rooms, k.clientPending],
      [
        batch.batchId,
        batch.createdAt,
        maxPendingRooms,
        this.settings.unfinishedLifetimeSeconds,
        batch.callbackUrl ?? '',
        batch.requestId,
        ...batch.roomIds.map(pendingRoomJson),
      ],
    )) as [string, number?];
    if (reply[0] === 'over') return { kind: 'over-pending-limit', pendingRooms: Number(reply[1]) };
    if (reply[0] !== 'created') throw new Error(`batch ${batch.batchId} could not be stored (${reply[0]})`);
    return { kind: 'created', summary: (await this.summary(client, batch.batchId))! };
  }

  async discard(client: string, batchId: string): Promise<void> {
    const k = this.keys.batch(client, batchId);
    await DISCARD.run(this.redis, [k.meta, k.rooms, k.clientPending], []);
  }

  async summary(client: string, batchId: string): Promise<BatchSummary | undefined> {
    const meta = (await this.redis.hgetall(this.keys.batch(client, batchId).meta)) as Partial<StoredBatchMeta>;
    return meta.batchId === undefined ? undefined : summaryOf(meta as StoredBatchMeta);
  }

  async delivery(client: string, batchId: string): Promise<BatchDelivery | undefined> {
    const [callbackUrl, requestId] = await this.redis.hmget(this.keys.batch(client, batchId).meta, 'callbackUrl', 'requestId');
    if (requestId === null) return undefined;
    return { requestId, ...(callbackUrl !== null && { callbackUrl }) };
  }

  async rooms(client: string, batchId: string, query: RoomsQuery): Promise<BatchRoomsPage> {
    const k = this.keys.batch(client, batchId);
    const [next, ...rooms] = (await PAGE.run(this.redis, [k.meta, k.rooms], [query.cursor, query.limit, query.status ?? ''])) as [
      number,
      ...string[],
    ];
    return { rooms: rooms.map((raw) => roomView(JSON.parse(raw) as StoredRoom)), ...(next >= 0 && { nextCursor: String(next) }) };
  }

  async beginRoom(client: string, batchId: string, index: number): Promise<RoomBegin> {
    const k = this.keys.batch(client, batchId);
    const [kind, mayHaveActed] = (await BEGIN.run(this.redis, [k.meta, k.rooms], [index])) as [string, number?];
    return kind === 'send' ? { kind: 'send', earlierAttemptMayHaveActed: mayHaveActed === 1 } : { kind: 'skip' };
  }

  async releaseRoom(client: string, batchId: string, index: number, release: RoomRelease): Promise<number> {
    const rooms = this.keys.batch(client, batchId).rooms;
    return Number(await RELEASE.run(this.redis, [rooms], [index, release.mayHaveActed ? '1' : '0', release.failed ? '1' : '0']));
  }

  async finishRoom(client: string, batchId: string, index: number, outcome: RoomOutcome, now: number): Promise<{ batchEnded: boolean }> {
    const k = this.keys.batch(client, batchId);
    const [, ended] = (await FINISH.run(
      this.redis,
      [k.meta, k.rooms, k.clientPending],
      [index, JSON.stringify(outcome), now, this.settings.ttlSeconds],
    )) as [number, number];
    return { batchEnded: ended === 1 };
  }

  async cancel(client: string, batchId: string, now: number): Promise<{ summary: BatchSummary; batchEnded: boolean } | undefined> {
    const k = this.keys.batch(client, batchId);
    const ended = (await CANCEL.run(this.redis, [k.meta, k.rooms, k.clientPending], [now, this.settings.ttlSeconds])) as number;
    if (ended < 0) return undefined;
    const summary = await this.summary(client, batchId);
    return summary && { summary, batchEnded: ended === 1 };
  }
}
