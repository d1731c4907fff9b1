import type { BatchRoomStatus, BatchRoomsPage, BatchSummary, RoomOutcome } from './room-batch.js';

/** A batch as submitted: its rooms are known by index (0-based, in the order sent). */
export interface NewBatch {
  batchId: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  roomIds: readonly string[];
  callbackUrl?: string;
  /** The submitting request's id: every room's log line carries it. */
  requestId: string;
}

export type CreateBatchResult =
  | { kind: 'created'; summary: BatchSummary }
  /** Accepting it would leave the client more rooms not yet sent than the limit allows. */
  | { kind: 'over-pending-limit'; pendingRooms: number };

export type RoomBegin =
  /** Send it. An earlier attempt may have reached the vendor: a "room exists" then means it was created. */
  | { kind: 'send'; earlierAttemptMayHaveActed: boolean }
  /** Ended already (another replica finished it, or it was cancelled), or the batch is gone. */
  | { kind: 'skip' };

/** What a batch holds besides its rooms' states, for its callback. */
export interface BatchDelivery {
  callbackUrl?: string;
  requestId: string;
}

export interface RoomRelease {
  mayHaveActed: boolean;
  failed: boolean;
}

export interface RoomsQuery {
  status?: BatchRoomStatus;
  /** The index to start from. */
  cursor: number;
  limit: number;
}

/**
 * Where batches and their rooms' states live: Redis for the fleet (RedisBatchStore), or this process
 * (InProcessBatchStore). Each room moves pending → created | failed | cancelled once; the counts,
 * the client's rooms not yet sent, and the batch's status move with it in the same step, so a room
 * finished twice (two replicas after a lapsed lock) counts once. Batches are stored per client: a
 * client names only its own, and another's id is simply not found.
 */
export interface BatchStore {
  /** `shared`: every replica sees the same batches (durable as Redis is); `in-process`: this process only. */
  readonly mode: 'shared' | 'in-process';
  /** Stores a new batch, all rooms pending, unless the client's rooms not yet sent would pass maxPendingRooms. */
  create(client: string, batch: NewBatch, maxPendingRooms: number): Promise<CreateBatchResult>;
  /** Removes a batch whose rooms could not be queued (nothing of it was sent). */
  discard(client: string, batchId: string): Promise<void>;
  summary(client: string, batchId: string): Promise<BatchSummary | undefined>;
  rooms(client: string, batchId: string, query: RoomsQuery): Promise<BatchRoomsPage>;
  delivery(client: string, batchId: string): Promise<BatchDelivery | undefined>;
  /** A replica takes up a room: it is marked as on its way until it ends or is released. */
  beginRoom(client: string, batchId: string, index: number): Promise<RoomBegin>;
  /**
   * The room goes back to pending for a later attempt. `mayHaveActed`: this attempt may have reached
   * the vendor; `failed`: it ended in a failure that counts. Resolves to the room's failures so far.
   */
  releaseRoom(client: string, batchId: string, index: number, release: RoomRelease): Promise<number>;
  /** Records the room's end once; `batchEnded`: the batch has no room left pending (true again on a repeat). */
  finishRoom(client: string, batchId: string, index: number, outcome: RoomOutcome, now: number): Promise<{ batchEnded: boolean }>;
  /** Cancels every room pending and not on its way; undefined for a batch the client does not have. */
  cancel(client: string, batchId: string, now: number): Promise<{ summary: BatchSummary; batchEnded: boolean } | undefined>;
}

export const BATCH_STORE = Symbol('BATCH_STORE');
