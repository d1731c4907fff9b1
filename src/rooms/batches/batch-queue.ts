import { AsyncResource } from 'node:async_hooks';
import type { SubmittingTrace } from '../../tracing/submitting-trace.js';
import type { CreateRoomDto } from '../dto/create-room.dto.js';

/** One room of a batch waiting to be created: all a replica needs to send it, whichever replica it is. */
export interface RoomJob {
  client: string;
  batchId: string;
  /** The room's place in the batch (0-based). */
  index: number;
  /** The room as validated at submission (the body POST /rooms takes), as plain data. */
  room: CreateRoomDto;
  /** The submitting request's id, for the room's log line. */
  requestId: string;
  /** The span the batch was submitted in (tracing on): the room's own trace links to it. */
  submittedIn?: SubmittingTrace;
}

/** Thrown by a room's work to have it tried again later; no failed attempt is counted. */
export class RetryRoomLater extends Error {
  constructor(readonly delayMs: number, reason: string) {
    super(reason);
    this.name = 'RetryRoomLater';
  }
}

/** What a queue runs for each room (BatchRoomRunner). */
export interface RoomJobHandler {
  /** Works one room to its end, or throws RetryRoomLater. `signal` aborts at shutdown: the room is handed back. */
  run(job: RoomJob, signal: AbortSignal): Promise<void>;
  /** The room's work failed unexpectedly for the last time: record it failed. */
  giveUp(job: RoomJob, error: unknown): Promise<void>;
}

/**
 * Where rooms wait for a replica: BullMQ on Redis for the fleet (durable, shared by every replica),
 * or this process. Each client has a line of its own and each replica works every line, a few rooms
 * of each at once (BATCH_CONCURRENCY): the order between clients is the scheduler's (fair shares,
 * weights, interactive first), never the order the batches came in.
 */
export interface BatchQueue {
  readonly durable: boolean;
  /** Queues the rooms of one batch, all or none. */
  enqueue(jobs: readonly RoomJob[]): Promise<void>;
  /** Starts working every client's line on this replica (and the lines of clients that appear later). */
  start(handler: RoomJobHandler, clients: () => readonly string[]): void;
  /** Stops taking rooms, hands back those waiting for a slot, and waits for the ones already sent. */
  stop(): Promise<void>;
  /** Rooms waiting in the queue, per client (for /metrics). */
  depth(): Promise<Map<string, number>>;
}

export const BATCH_QUEUE = Symbol('BATCH_QUEUE');

/** Attempts of a room whose work fails unexpectedly (a Redis error while recording it, a crash) before it is recorded failed. */
export const ROOM_JOB_ATTEMPTS = 8;

/** Backoff between those attempts: doubling from here. */
export const ROOM_JOB_BACKOFF_MS = 1000;

/**
 * Runs work in the async context this was made in (start-up, when a queue is built), not in that
 * of the request that queued it: a room must not carry its submission's deadline, request stages
 * or log context.
 */
export function outsideRequests(): (work: () => void) => void {
  return AsyncResource.bind((work: () => void): void => work());
}
