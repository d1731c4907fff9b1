/** What a batch is doing: nothing begun, some rooms begun, every room ended, or cancelled by its client. */
export type BatchStatus = 'queued' | 'running' | 'done' | 'cancelled';

/** One room of a batch: not yet ended, created at the vendor, refused or failed, or cancelled before it was sent. */
export type BatchRoomStatus = 'pending' | 'created' | 'failed' | 'cancelled';

export const BATCH_ROOM_STATUSES: readonly BatchRoomStatus[] = ['pending', 'created', 'failed', 'cancelled'];

/** Why a room failed: the answer POST /rooms would have given for it. */
export interface BatchRoomError {
  statusCode: number;
  message: string;
  zegoCode?: number;
}

/** One room as GET /rooms/batches/:id shows it; fields that do not apply are left out. */
export interface BatchRoomView {
  roomId: string;
  status: BatchRoomStatus;
  attributeSeq?: number;
  zegoRequestId?: string;
  /** Created by an earlier attempt whose answer was lost (a timeout, a reset, a replica that died). */
  recovered?: true;
  error?: BatchRoomError;
}

/** The batch without its rooms: the 202, the callback, and the head of every GET. */
export interface BatchSummary {
  batchId: string;
  status: BatchStatus;
  total: number;
  created: number;
  failed: number;
  cancelled: number;
  pending: number;
  createdAt: string;
  finishedAt?: string;
}

/** A page of a batch's rooms, from `cursor` on, optionally only those of one status. */
export interface BatchRoomsPage {
  rooms: BatchRoomView[];
  /** Where the next page starts; absent on the last page. */
  nextCursor?: string;
}

/** How a room's vendor call ended, as the store records it. */
export type RoomOutcome =
  | { status: 'created'; attributeSeq: number; zegoRequestId: string; recovered?: true }
  | { status: 'failed'; error: BatchRoomError };
