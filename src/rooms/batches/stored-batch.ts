import type { BatchRoomStatus, BatchRoomView, BatchStatus, BatchSummary } from './room-batch.js';

/** A batch's meta hash as both stores keep it (numbers as Redis returns them: strings). */
export interface StoredBatchMeta {
  batchId: string;
  status: BatchStatus;
  total: string;
  created: string;
  failed: string;
  cancelled: string;
  pending: string;
  /** Milliseconds since the epoch. */
  createdAt: string;
  finishedAt?: string;
  callbackUrl?: string;
  requestId: string;
}

/** A room as both stores keep it: its view, plus the marks of attempts that may have reached the vendor. */
export interface StoredRoom extends BatchRoomView {
  /** An attempt began and has not ended: if the batch meets it again, its replica died mid-call. */
  sending?: 1;
  /** An ended attempt may have reached the vendor. */
  maybeActed?: 1;
  /** Attempts that ended in a failure that may pass (the vendor's 429 or 5xx, a timeout). */
  failures?: number;
}

export function pendingRoomJson(roomId: string): string {
  return JSON.stringify({ roomId, status: 'pending' satisfies BatchRoomStatus });
}

export function summaryOf(meta: StoredBatchMeta): BatchSummary {
  return {
    batchId: meta.batchId,
    status: meta.status,
    total: Number(meta.total),
    created: Number(meta.created),
    failed: Number(meta.failed),
    cancelled: Number(meta.cancelled),
    pending: Number(meta.pending),
    createdAt: new Date(Number(meta.createdAt)).toISOString(),
    ...(meta.finishedAt !== undefined && { finishedAt: new Date(Number(meta.finishedAt)).toISOString() }),
  };
}

/** What a client sees of a stored room: the marks of its attempts stay inside. */
export function roomView(room: StoredRoom): BatchRoomView {
  const { sending: _sending, maybeActed: _maybeActed, failures: _failures, ...view } = room;
  return view;
}
