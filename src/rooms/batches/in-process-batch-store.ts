import type { BatchDelivery, BatchStore, CreateBatchResult, NewBatch, RoomBegin, RoomRelease, RoomsQuery } from './batch-store.js';
import type { BatchRoomsPage, BatchSummary, RoomOutcome } from './room-batch.js';
import { roomView, summaryOf, type StoredBatchMeta, type StoredRoom } from './stored-batch.js';

interface Held {
  meta: StoredBatchMeta;
  rooms: StoredRoom[];
  /** Wall-clock time (ms) after which the batch is forgotten, as Redis would expire its keys. */
  expiresAt: number;
}

/**
 * Batches of a gateway without Redis (the local quick start): the same steps as the Lua scripts of
 * RedisBatchStore, in this process and lost with it. A differential spec keeps the two one.
 */
export class InProcessBatchStore implements BatchStore {
  readonly mode = 'in-process';
  private readonly batches = new Map<string, Held>();
  private readonly pendingByClient = new Map<string, number>();

  constructor(
    private readonly settings: { readonly ttlSeconds: number; readonly unfinishedLifetimeSeconds: number },
    private readonly clock: () => number = Date.now,
  ) {}

  create(client: string, batch: NewBatch, maxPendingRooms: number): Promise<CreateBatchResult> {
    const key = this.key(client, batch.batchId);
    if (this.held(key)) throw new Error(`batch ${batch.batchId} could not be stored (exists)`);
    const pending = this.pendingByClient.get(client) ?? 0;
    const total = batch.roomIds.length;
    if (pending + total > maxPendingRooms) return Promise.resolve({ kind: 'over-pending-limit', pendingRooms: pending });
    this.pendingByClient.set(client, pending + total);
    const meta: StoredBatchMeta = {
      batchId: batch.batchId,
      status: 'queued',
      total: String(total),
      created: '0',
      failed: '0',
      cancelled: '0',
      pending: String(total),
      createdAt: String(batch.createdAt),
      requestId: batch.requestId,
      ...(batch.callbackUrl !== undefined && { callbackUrl: batch.callbackUrl }),
    };
    const rooms = batch.roomIds.map((roomId): StoredRoom => ({ roomId, status: 'pending' }));
    this.batches.set(key, { meta, rooms, expiresAt: this.clock() + this.settings.unfinishedLifetimeSeconds * 1000 });
    return Promise.resolve({ kind: 'created', summary: summaryOf(meta) });
  }

  discard(client: string, batchId: string): Promise<void> {
    const key = this.key(client, batchId);
    const held = this.held(key);
    if (held) this.takeOffPending(client, Number(held.meta.pending));
    this.batches.delete(key);
    return Promise.resolve();
  }

  summary(client: string, batchId: string): Promise<BatchSummary | undefined> {
    const held = this.held(this.key(client, batchId));
    return Promise.resolve(held && summaryOf(held.meta));
  }

  delivery(client: string, batchId: string): Promise<BatchDelivery | undefined> {
    const held = this.held(this.key(client, batchId));
    if (!held) return Promise.resolve(undefined);
    const { callbackUrl, requestId } = held.meta;
    return Promise.resolve({ requestId, ...(callbackUrl !== undefined && { callbackUrl }) });
  }

  rooms(client: string, batchId: string, query: RoomsQuery): Promise<BatchRoomsPage> {
    const rooms = this.held(this.key(client, batchId))?.rooms ?? [];
    const page: BatchRoomsPage = { rooms: [] };
    let index = query.cursor;
    while (index < rooms.length && page.rooms.length < query.limit) {
      const room = rooms[index++]!;
      if (query.status === undefined || room.status === query.status) page.rooms.push(roomView({ ...room }));
    }
    if (index < rooms.length) page.nextCursor = String(index);
    return Promise.resolve(page);
  }

  beginRoom(client: string, batchId: string, index: number): Promise<RoomBegin> {
    const held = this.held(this.key(client, batchId));
    const room = held?.rooms[index];
    if (!held || !room || room.status !== 'pending') return Promise.resolve({ kind: 'skip' });
    const earlierAttemptMayHaveActed = room.sending === 1 || room.maybeActed === 1;
    room.sending = 1;
    if (held.meta.status === 'queued') held.meta.status = 'running';
    return Promise.resolve({ kind: 'send', earlierAttemptMayHaveActed });
  }

  releaseRoom(client: string, batchId: string, index: number, release: RoomRelease): Promise<number> {
    const room = this.held(this.key(client, batchId))?.rooms[index];
    if (room?.status !== 'pending') return Promise.resolve(0);
    delete room.sending;
    if (release.mayHaveActed) room.maybeActed = 1;
    if (release.failed) room.failures = (room.failures ?? 0) + 1;
    return Promise.resolve(room.failures ?? 0);
  }

  finishRoom(client: string, batchId: string, index: number, outcome: RoomOutcome, now: number): Promise<{ batchEnded: boolean }> {
    const held = this.held(this.key(client, batchId));
    const room = held?.rooms[index];
    if (!held || !room) return Promise.resolve({ batchEnded: false });
    if (room.status !== 'pending') return Promise.resolve({ batchEnded: held.meta.finishedAt !== undefined });
    held.rooms[index] = { roomId: room.roomId, ...outcome };
    held.meta[outcome.status] = String(Number(held.meta[outcome.status]) + 1);
    this.takeOffPending(client, 1);
    return Promise.resolve({ batchEnded: this.afterRoomsEnded(held, 1, now) });
  }

  cancel(client: string, batchId: string, now: number): Promise<{ summary: BatchSummary; batchEnded: boolean } | undefined> {
    const held = this.held(this.key(client, batchId));
    if (!held) return Promise.resolve(undefined);
    const { meta } = held;
    if (meta.status === 'done' || meta.status === 'cancelled') {
      return Promise.resolve({ summary: summaryOf(meta), batchEnded: meta.finishedAt !== undefined });
    }
    let cancelled = 0;
    held.rooms.forEach((room, index) => {
      if (room.status === 'pending' && room.sending !== 1) {
        held.rooms[index] = { roomId: room.roomId, status: 'cancelled' };
        cancelled++;
      }
    });
    meta.status = 'cancelled';
    meta.cancelled = String(Number(meta.cancelled) + cancelled);
    this.takeOffPending(client, cancelled);
    const batchEnded = this.afterRoomsEnded(held, cancelled, now);
    return Promise.resolve({ summary: summaryOf(meta), batchEnded });
  }

  /** Takes `ended` rooms off the batch's pending; the batch ends when none is left. */
  private afterRoomsEnded(held: Held, ended: number, now: number): boolean {
    const { meta } = held;
    const pending = Number(meta.pending) - ended;
    meta.pending = String(pending);
    if (pending > 0) return false;
    if (meta.status !== 'cancelled') meta.status = 'done';
    meta.finishedAt = String(now);
    held.expiresAt = this.clock() + this.settings.ttlSeconds * 1000;
    return true;
  }

  private takeOffPending(client: string, rooms: number): void {
    const left = (this.pendingByClient.get(client) ?? 0) - rooms;
    if (left > 0) this.pendingByClient.set(client, left);
    else this.pendingByClient.delete(client);
  }

  private held(key: string): Held | undefined {
    const held = this.batches.get(key);
    if (held && held.expiresAt <= this.clock()) {
      this.batches.delete(key);
      return undefined;
    }
    return held;
  }

  private key(client: string, batchId: string): string {
    return `${client}\n${batchId}`;
  }
}
