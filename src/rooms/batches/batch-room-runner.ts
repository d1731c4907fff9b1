import { performance } from 'node:perf_hooks';
import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { APP_CONFIG } from '../../config/config.module.js';
import { GatewayError } from '../../http/gateway-error.js';
import { PinoLogger } from '../../logging/pino-logger.js';
import { newRequestLogContext, requestContext, type RequestLogContext } from '../../logging/request-context.js';
import { OutboundRateLimitRefusal } from '../../rate-limit/outbound-rate-limiter.js';
import { SharedStoreUnavailable } from '../../redis/shared-store-unavailable.js';
import { ATTR, inSpan, SPAN } from '../../tracing/gateway-tracer.js';
import { linksToSubmission } from '../../tracing/submitting-trace.js';
import { CallDeadlinePassed } from '../../zego/call-deadline-passed.js';
import { ZimCallError } from '../../zego/zim-call-error.js';
import { RoomsService } from '../rooms.service.js';
import { BatchCallbacks } from './batch-callbacks.js';
import { BatchEvents } from './batch-events.js';
import { RetryRoomLater, type RoomJob, type RoomJobHandler } from './batch-queue.js';
import { BATCH_STORE, type BatchStore } from './batch-store.js';
import type { BatchRoomError, RoomOutcome } from './room-batch.js';

/** Vendor failures that may pass (its 429, its 5xx, a timeout, no connection): tried again this often before the room fails. */
export const TRANSIENT_ROOM_FAILURES = 5;

/** The first wait after such a failure; it doubles, up to a minute. */
const TRANSIENT_BACKOFF_MS = 2000;
const MAX_BACKOFF_MS = 60_000;

/**
 * Creates one room of a batch: through the same RoomsService and ZimClient path as POST /rooms, at
 * `batch` priority under the submitting client's share, without an HTTP request. What happens to
 * the room is decided here:
 * - created (also "exists" after an attempt that may have acted: `recovered`), or refused by the
 *   vendor for good (failed, with the answer POST /rooms would have given);
 * - not sent (no slot within the wait, the budget's store unavailable, a replica shutting down):
 *   handed back to the queue, tried again later, no failure counted;
 * - a failure that may pass (the vendor's 429 or 5xx, a timeout, no connection): tried again with
 *   backoff, remembering whether the attempt may have acted, and failed after
 *   TRANSIENT_ROOM_FAILURES.
 */
@Injectable()
export class BatchRoomRunner implements RoomJobHandler {
  private readonly log: Logger;

  constructor(
    @Inject(APP_CONFIG) private readonly config: { readonly zego: { readonly callDeadlineMs: number } },
    @Inject(BATCH_STORE) private readonly store: BatchStore,
    private readonly rooms: RoomsService,
    private readonly callbacks: BatchCallbacks,
    private readonly events: BatchEvents,
    logger: PinoLogger,
  ) {
    this.log = logger.pino.child({ context: 'BatchRoom' });
  }

  /** A room is a trace of its own, linked to the request that submitted its batch (when that was traced). */
  run(job: RoomJob, signal: AbortSignal): Promise<void> {
    const attributes = { [ATTR.clientId]: job.client, [ATTR.batchId]: job.batchId, [ATTR.roomIndex]: job.index, [ATTR.roomId]: job.room.roomId };
    const expected = (error: unknown): boolean => error instanceof RetryRoomLater;
    return inSpan(SPAN.batchRoom, { root: true, links: linksToSubmission(job.submittedIn), attributes, expected }, async (span) => {
      try {
        span.setAttribute(ATTR.outcome, await this.work(job, signal));
      } catch (error) {
        if (error instanceof RetryRoomLater) span.setAttribute(ATTR.outcome, 'handed-back');
        throw error;
      }
    });
  }

  /** Works the room to its end; returns what became of it (`skipped`: another worker has it, or it ended). */
  private async work(job: RoomJob, signal: AbortSignal): Promise<string> {
    const { client, batchId, index } = job;
    const begun = await this.store.beginRoom(client, batchId, index);
    if (begun.kind === 'skip') return 'skipped';
    const context = newRequestLogContext();
    const startedAt = performance.now();
    let outcome: RoomOutcome;
    try {
      const created = await requestContext.run(context, () =>
        this.rooms.createRoom(job.room, {
          client,
          priority: 'batch',
          earlierAttemptMayHaveActed: begun.earlierAttemptMayHaveActed,
          signal,
          // Each attempt at a room has a deadline of its own, not its submission's.
          deadline: startedAt + this.config.zego.callDeadlineMs,
        }),
      );
      outcome = {
        status: 'created',
        attributeSeq: created.attributeSeq,
        zegoRequestId: created.zegoRequestId,
        ...(created.recovered === true && { recovered: true as const }),
      };
    } catch (error) {
      const failure = await this.unlessTriedAgain(job, error, signal, context);
      outcome = { status: 'failed', error: failure };
    } finally {
      for (let i = 0; i < context.vendorAttempts; i++) this.events.room({ client, kind: 'sent' });
    }
    const { batchEnded } = await this.store.finishRoom(client, batchId, index, outcome, Date.now());
    this.events.room({ client, kind: outcome.status });
    this.logEnd(job, outcome, context, performance.now() - startedAt);
    if (batchEnded) await this.callbacks.batchEnded(client, batchId);
    return outcome.status;
  }

  async giveUp(job: RoomJob, error: unknown): Promise<void> {
    const outcome: RoomOutcome = { status: 'failed', error: { statusCode: 500, message: 'Internal error' } };
    const { batchEnded } = await this.store.finishRoom(job.client, job.batchId, job.index, outcome, Date.now());
    this.events.room({ client: job.client, kind: 'failed' });
    this.log.error(
      { ...this.ids(job), status: 'failed', err: error instanceof Error ? error.message : String(error) },
      `Batch room ${job.room.roomId} failed: its work kept failing unexpectedly`,
    );
    if (batchEnded) await this.callbacks.batchEnded(job.client, job.batchId);
  }

  /**
   * Hands the room back (throws RetryRoomLater) unless the error is the room's final answer, which
   * is returned as the room's error.
   */
  private async unlessTriedAgain(job: RoomJob, error: unknown, signal: AbortSignal, context: RequestLogContext): Promise<BatchRoomError> {
    const { client, batchId, index } = job;
    const handBack = async (delayMs: number, reason: string, mayHaveActed: boolean): Promise<never> => {
      await this.store.releaseRoom(client, batchId, index, { mayHaveActed, failed: false });
      return this.later(job, delayMs, reason);
    };
    // A replica shutting down: whatever was sent in this run may have acted.
    if (signal.aborted) return handBack(0, 'this replica is shutting down', context.vendorAttempts > 0);
    if (error instanceof OutboundRateLimitRefusal || error instanceof SharedStoreUnavailable || error instanceof CallDeadlinePassed) {
      const waitMs = (error.details.retryAfterSeconds ?? 1) * 1000;
      return handBack(Math.min(waitMs, MAX_BACKOFF_MS), error.publicMessage, context.vendorAttempts > 0);
    }
    if (error instanceof ZimCallError && (error.status === 429 || error.status >= 500)) {
      const mayHaveActed = error.outcome === 'timeout' || error.earlierAttemptMayHaveActed;
      const failures = await this.store.releaseRoom(client, batchId, index, { mayHaveActed, failed: true });
      if (failures < TRANSIENT_ROOM_FAILURES) {
        const backoff = Math.min(TRANSIENT_BACKOFF_MS * 2 ** (failures - 1), MAX_BACKOFF_MS);
        const hinted = (error.details.retryAfterSeconds ?? 0) * 1000;
        return this.later(job, Math.max(backoff, hinted), error.publicMessage);
      }
    }
    if (error instanceof GatewayError) {
      return {
        statusCode: error.status,
        message: error.publicMessage,
        ...(error.details.zegoCode !== undefined && { zegoCode: error.details.zegoCode }),
      };
    }
    // Not the vendor's answer: the queue tries again, and records the room failed after its last attempt.
    throw error;
  }

  private later(job: RoomJob, delayMs: number, reason: string): never {
    this.log.debug({ ...this.ids(job), delayMs, reason }, `Batch room ${job.room.roomId} handed back: ${reason}`);
    throw new RetryRoomLater(delayMs, reason);
  }

  private logEnd(job: RoomJob, outcome: RoomOutcome, context: RequestLogContext, durationMs: number): void {
    const fields = {
      ...this.ids(job),
      status: outcome.status,
      ...(outcome.status === 'created'
        ? { zegoRequestId: outcome.zegoRequestId, ...(outcome.recovered && { recovered: true }) }
        : { statusCode: outcome.error.statusCode, zegoCode: outcome.error.zegoCode }),
      vendorAttempts: context.vendorAttempts,
      limiterWaitMs: Math.round(context.limiterWaitMs),
      durationMs: Math.round(durationMs * 10) / 10,
    };
    if (outcome.status === 'created') this.log.info(fields, `Batch room ${job.room.roomId} created`);
    else this.log.warn(fields, `Batch room ${job.room.roomId} failed: ${outcome.error.message}`);
  }

  private ids(job: RoomJob): Record<string, unknown> {
    return { requestId: job.requestId, batchId: job.batchId, client: job.client, roomId: job.room.roomId, roomIndex: job.index };
  }
}
