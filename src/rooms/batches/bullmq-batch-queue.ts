import { Logger } from '@nestjs/common';
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import type { RedisClient } from '../../redis/redis-connection.js';
import { answerWithin } from '../../redis/answer-within.js';
import type { RedisKeys } from '../../redis/redis-keys.js';
import { outsideRequests, ROOM_JOB_ATTEMPTS, ROOM_JOB_BACKOFF_MS, RetryRoomLater, type BatchQueue, type RoomJob, type RoomJobHandler } from './batch-queue.js';

/** Connections the queues use: fail-fast for adding (a submission answers 503 at once), blocking-ready for working. */
export interface BatchQueueConnections {
  /** The gateway's fail-fast options: no offline queue, a timeout on every command. */
  producer: RedisClient;
  /** maxRetriesPerRequest null, offline queue on: BullMQ's workers wait out a reconnect. */
  worker: RedisClient;
}

/**
 * How long a replica holds a room before another may take it: BullMQ renews the lock every half of
 * it while the room is worked, so only a replica that died (or stalled this long) loses its rooms,
 * to the first replica that checks (every STALLED_CHECK_MS).
 */
const LOCK_MS = 10_000;
const STALLED_CHECK_MS = 5_000;
/** A room whose replicas kept dying under it is failed after this many hand-overs. */
const MAX_STALLED = 20;
/** The longest a submission waits for its rooms to be queued (one MULTI of up to BATCH_MAX_ROOMS jobs). */
const ENQUEUE_TIMEOUT_MS = 5000;
/** The longest a /metrics scrape waits for the queue depths. */
const DEPTH_READ_TIMEOUT_MS = 1000;
/** How often a replica looks for clients that appeared since (a rotated API_KEYS_FILE). */
const CLIENTS_CHECK_MS = 5_000;

/**
 * The fleet's batch queue on BullMQ: one queue per client (BullMQ has no fair groups in its open
 * source edition, and one FIFO queue would let the first big batch hold every worker), each worked
 * by every replica with BATCH_CONCURRENCY rooms at once. Rooms are durable as Redis is; a replica
 * that dies leaves its rooms to the others once their locks lapse.
 */
export class BullmqBatchQueue implements BatchQueue {
  readonly durable = true;
  private readonly logger = new Logger('BatchQueue');
  private readonly queues = new Map<string, Queue>();
  private readonly workers = new Map<string, Worker<RoomJob>>();
  private readonly shutdown = new AbortController();
  private handler?: RoomJobHandler;
  private clientsCheck?: NodeJS.Timeout;
  /** A worker started for a new client must not carry the submitting request's context into every room it works. */
  private readonly detached = outsideRequests();

  constructor(
    private readonly connections: BatchQueueConnections,
    private readonly keys: RedisKeys,
    private readonly settings: { readonly concurrency: number; readonly ttlSeconds: number },
  ) {}

  async enqueue(jobs: readonly RoomJob[]): Promise<void> {
    const client = jobs[0]?.client;
    if (client === undefined) return;
    // BullMQ waits for a connection that is not up; a submission answers 503 instead. Should the
    // add land after the timeout, its rooms find their batch discarded and are skipped.
    if (this.connections.producer.status !== 'ready') throw new Error('the batch queue cannot be reached: Redis is not connected');
    const adding = this.queueFor(client).addBulk(
      jobs.map((job) => ({
        name: 'room',
        data: job,
        opts: {
          jobId: `${job.batchId}.${job.index}`,
          attempts: ROOM_JOB_ATTEMPTS,
          backoff: { type: 'exponential', delay: ROOM_JOB_BACKOFF_MS },
          removeOnComplete: true,
          removeOnFail: { age: this.settings.ttlSeconds },
        },
      })),
    );
    await answerWithin(ENQUEUE_TIMEOUT_MS, adding);
    this.detached(() => this.work(client));
  }

  start(handler: RoomJobHandler, clients: () => readonly string[]): void {
    this.handler = handler;
    const check = (): void => clients().forEach((client) => this.work(client));
    check();
    this.clientsCheck = setInterval(check, CLIENTS_CHECK_MS);
    this.clientsCheck.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.clientsCheck);
    // Rooms waiting for a slot are handed back at once; rooms already sent finish (close waits for them).
    this.shutdown.abort();
    await Promise.all([...this.workers.values()].map((worker) => worker.close()));
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
  }

  async depth(): Promise<Map<string, number>> {
    // BullMQ waits for a connection that is not up: a scrape must not (no reading rather than a hang).
    if (this.connections.producer.status !== 'ready') throw new Error('the batch queue cannot be read: Redis is not connected');
    const reading = Promise.all(
      [...this.queues].map(async ([client, queue]) => {
        const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized');
        return [client, Object.values(counts).reduce((sum, count) => sum + count, 0)] as const;
      }),
    );
    return new Map(await answerWithin(DEPTH_READ_TIMEOUT_MS, reading));
  }

  private queueFor(client: string): Queue {
    let queue = this.queues.get(client);
    if (!queue) {
      queue = new Queue(this.keys.batchRoomQueue(client), { connection: this.connections.producer, prefix: this.keys.batchQueuePrefix });
      queue.on('error', (error) => this.logger.warn(`Batch queue of ${client}: ${error.message}`));
      this.queues.set(client, queue);
    }
    return queue;
  }

  private work(client: string): void {
    const handler = this.handler;
    if (!handler || this.workers.has(client) || this.shutdown.signal.aborted) return;
    this.queueFor(client);
    const worker = new Worker<RoomJob>(this.keys.batchRoomQueue(client), (job, token) => this.process(handler, job, token), {
      connection: this.connections.worker,
      prefix: this.keys.batchQueuePrefix,
      concurrency: this.settings.concurrency,
      lockDuration: LOCK_MS,
      stalledInterval: STALLED_CHECK_MS,
      maxStalledCount: MAX_STALLED,
    });
    let lastError = '';
    worker.on('error', (error) => {
      // One line per distinct error: a Redis outage would otherwise log every reconnect.
      if (error.message !== lastError) this.logger.warn(`Batch worker of ${client}: ${error.message}`);
      lastError = error.message;
    });
    worker.on('failed', (job, error) => {
      if (!job || job.attemptsMade < (job.opts.attempts ?? 1)) return;
      handler.giveUp(job.data, error).catch((cause: unknown) => {
        this.logger.error(`Batch room ${job.data.room.roomId} could not be recorded failed: ${(cause as Error).message}`);
      });
    });
    this.workers.set(client, worker);
  }

  private async process(handler: RoomJobHandler, job: Job<RoomJob>, token?: string): Promise<void> {
    try {
      await handler.run(job.data, this.shutdown.signal);
    } catch (error) {
      if (!(error instanceof RetryRoomLater)) throw error;
      // Back to the queue for later, without counting an attempt (BullMQ's documented pattern).
      await job.moveToDelayed(Date.now() + error.delayMs, token);
      throw new DelayedError();
    }
  }
}

