import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG } from '../../config/config.module.js';
import { GatewayError } from '../../http/gateway-error.js';
import { RequestValidationError } from '../../http/request-validation.error.js';
import type { FieldError } from '../../http/error-body.js';
import { currentSubmittingTrace } from '../../tracing/submitting-trace.js';
import type { CreateRoomDto } from '../dto/create-room.dto.js';
import { callbackAllowed } from './batch-callback-sender.js';
import { BatchCallbacks } from './batch-callbacks.js';
import { BatchEvents } from './batch-events.js';
import { BATCH_QUEUE, type BatchQueue } from './batch-queue.js';
import { BATCH_STORE, type BatchStore, type RoomsQuery } from './batch-store.js';
import type { BatchSettings } from './batches.settings.js';
import type { CreateRoomBatchDto } from './dto/create-room-batch.dto.js';
import { BATCH_ROOM_STATUSES, type BatchRoomStatus, type BatchRoomsPage, type BatchSummary } from './room-batch.js';

/** A batch as GET (and DELETE) answer it: the summary and one page of rooms. */
export type BatchView = BatchSummary & BatchRoomsPage;

/** The batch store (Redis) cannot be reached: a batch cannot be durable without it, whatever RATE_LIMIT_ON_REDIS_DOWN says. */
export class BatchStoreUnavailable extends GatewayError {
  constructor(cause?: unknown) {
    super(503, 'The batch store (Redis) is unavailable; batches cannot be accepted or read without it, retry later', {
      retryAfterSeconds: 1,
      cause,
    });
  }
}

export class BatchNotFound extends GatewayError {
  constructor() {
    super(404, 'No such batch');
  }
}

/** Accepting the batch would leave the client more rooms not yet sent than BATCH_MAX_PENDING_ROOMS_PER_CLIENT. */
export class TooManyPendingRooms extends GatewayError {
  constructor(pendingRooms: number, adding: number, limit: number, retryAfterSeconds: number) {
    super(
      429,
      `This client already has ${pendingRooms} batch rooms not yet sent; ${adding} more would pass the limit of ${limit}. ` +
        'Retry once some have been sent, or send a smaller batch',
      { retryAfterSeconds },
    );
  }
}

const BATCH_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const DEFAULT_PAGE_ROOMS = 100;
export const MAX_PAGE_ROOMS = 1000;

/**
 * Accepts batches (checked whole before anything is stored: one bad room refuses all of it), reads
 * and cancels them. The rooms themselves are created by BatchRoomRunner, on whichever replica
 * takes them from the queue. Every batch is its client's: another client's id is not found.
 */
@Injectable()
export class RoomBatchesService {
  private readonly logger = new Logger('RoomBatches');

  constructor(
    @Inject(APP_CONFIG) private readonly config: { readonly batches: BatchSettings; readonly outbound: { readonly qpsLimit: number } },
    @Inject(BATCH_STORE) private readonly store: BatchStore,
    @Inject(BATCH_QUEUE) private readonly queue: BatchQueue,
    private readonly callbacks: BatchCallbacks,
    private readonly events: BatchEvents,
  ) {}

  async submit(client: string, dto: CreateRoomBatchDto, requestId: string): Promise<BatchSummary> {
    this.check(dto);
    const { maxPendingRoomsPerClient } = this.config.batches;
    const batchId = randomUUID();
    const created = await this.storeCall(() =>
      this.store.create(
        client,
        {
          batchId,
          createdAt: Date.now(),
          roomIds: dto.rooms.map((room) => room.roomId),
          requestId,
          ...(dto.callbackUrl !== undefined && { callbackUrl: dto.callbackUrl }),
        },
        maxPendingRoomsPerClient,
      ),
    );
    if (created.kind === 'over-pending-limit') {
      // Rooms leave the client's count as they are sent: at best the whole budget's rate.
      const excess = created.pendingRooms + dto.rooms.length - maxPendingRoomsPerClient;
      const retryAfter = Math.max(1, Math.ceil(excess / this.config.outbound.qpsLimit));
      throw new TooManyPendingRooms(created.pendingRooms, dto.rooms.length, maxPendingRoomsPerClient, retryAfter);
    }
    const submittedIn = currentSubmittingTrace();
    try {
      await this.queue.enqueue(
        dto.rooms.map((room, index) => ({ client, batchId, index, room: plainRoom(room), requestId, ...(submittedIn && { submittedIn }) })),
      );
    } catch (error) {
      await this.store.discard(client, batchId).catch((cause: unknown) => {
        this.logger.error(`Batch ${batchId} could not be queued nor discarded: ${(cause as Error).message}`);
      });
      throw new BatchStoreUnavailable(error);
    }
    this.events.batchAccepted({ client, rooms: dto.rooms.length });
    return created.summary;
  }

  async view(client: string, batchId: string, query: RoomsQuery): Promise<BatchView> {
    const summary = await this.storeCall(() => (BATCH_ID.test(batchId) ? this.store.summary(client, batchId) : undefined));
    if (!summary) throw new BatchNotFound();
    const page = await this.storeCall(() => this.store.rooms(client, batchId, query));
    return { ...summary, ...page };
  }

  async cancel(client: string, batchId: string, query: RoomsQuery): Promise<BatchView> {
    const cancelled = await this.storeCall(() => (BATCH_ID.test(batchId) ? this.store.cancel(client, batchId, Date.now()) : undefined));
    if (!cancelled) throw new BatchNotFound();
    if (cancelled.batchEnded) await this.callbacks.batchEnded(client, batchId).catch((error: unknown) => this.logger.warn(`Batch ${batchId}: ${(error as Error).message}`));
    const page = await this.storeCall(() => this.store.rooms(client, batchId, query));
    return { ...cancelled.summary, ...page };
  }

  /** What validation of each room alone cannot see: the batch's size, its room ids together, its callback's host. */
  private check(dto: CreateRoomBatchDto): void {
    const problems: FieldError[] = [];
    const { maxRooms, callbackHosts } = this.config.batches;
    if (dto.rooms.length > maxRooms) problems.push({ field: 'rooms', reason: `must hold at most ${maxRooms} rooms (BATCH_MAX_ROOMS)` });
    const firstIndex = new Map<string, number>();
    dto.rooms.forEach((room, index) => {
      const first = firstIndex.get(room.roomId);
      if (first === undefined) firstIndex.set(room.roomId, index);
      else problems.push({ field: `rooms[${index}].roomId`, reason: `repeats rooms[${first}].roomId: room ids must be unique within a batch` });
    });
    if (dto.callbackUrl !== undefined) {
      const reason = callbackUrlProblem(dto.callbackUrl, callbackHosts);
      if (reason) problems.push({ field: 'callbackUrl', reason });
    }
    if (problems.length > 0) throw new RequestValidationError(problems);
  }

  private async storeCall<T>(call: () => Promise<T> | T): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw new BatchStoreUnavailable(error);
    }
  }
}

function callbackUrlProblem(text: string, hosts: readonly string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'must be an absolute http:// or https:// URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an absolute http:// or https:// URL';
  if (url.username !== '' || url.password !== '') return 'must not carry credentials';
  if (hosts.length === 0) return 'callbacks are disabled on this gateway (BATCH_CALLBACK_HOSTS lists no host)';
  if (!callbackAllowed(url, hosts)) return 'names a host not listed in BATCH_CALLBACK_HOSTS';
  return undefined;
}

/** A validated room as plain data (the queue stores JSON): only the fields it has. */
function plainRoom(room: CreateRoomDto): CreateRoomDto {
  return JSON.parse(JSON.stringify(room)) as CreateRoomDto;
}

/** GET's and DELETE's query: `status`, `cursor`, `limit`, each checked, with a 400 naming it. */
export function readRoomsQuery(query: Record<string, unknown>): RoomsQuery {
  const problems: FieldError[] = [];
  const text = (name: string): string | undefined => {
    const value = query[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') {
      problems.push({ field: name, reason: 'must be given once' });
      return undefined;
    }
    return value;
  };
  const status = text('status');
  if (status !== undefined && !BATCH_ROOM_STATUSES.includes(status as BatchRoomStatus)) {
    problems.push({ field: 'status', reason: `must be one of ${BATCH_ROOM_STATUSES.join(', ')}` });
  }
  const cursor = text('cursor') ?? '0';
  if (!/^\d{1,6}$/.test(cursor)) problems.push({ field: 'cursor', reason: 'must be a cursor this API returned (nextCursor)' });
  const limit = text('limit') ?? String(DEFAULT_PAGE_ROOMS);
  if (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_PAGE_ROOMS) {
    problems.push({ field: 'limit', reason: `must be an integer from 1 to ${MAX_PAGE_ROOMS}` });
  }
  if (problems.length > 0) throw new RequestValidationError(problems);
  return { cursor: Number(cursor), limit: Number(limit), ...(status !== undefined && { status: status as BatchRoomStatus }) };
}
