import { Logger } from '@nestjs/common';
import { outsideRequests, ROOM_JOB_ATTEMPTS, ROOM_JOB_BACKOFF_MS, RetryRoomLater, type BatchQueue, type RoomJob, type RoomJobHandler } from './batch-queue.js';

interface Waiting {
  job: RoomJob;
  /** Unexpected failures so far. */
  failures: number;
}

/**
 * The batch queue of a gateway without Redis: each client's rooms in a line of its own, worked
 * BATCH_CONCURRENCY at a time, with the same hand-backs and retries as the BullMQ queue. Not
 * durable: the rooms are lost with the process (the README says so).
 */
export class InProcessBatchQueue implements BatchQueue {
  readonly durable = false;
  private readonly logger = new Logger('BatchQueue');
  private readonly lines = new Map<string, Waiting[]>();
  private readonly working = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly shutdown = new AbortController();
  private handler?: RoomJobHandler;
  /** A room must not carry its submission's context (see outsideRequests). */
  private readonly detached = outsideRequests();

  constructor(private readonly settings: { readonly concurrency: number }) {}

  enqueue(jobs: readonly RoomJob[]): Promise<void> {
    jobs.forEach((job) => this.lineOf(job.client).push({ job, failures: 0 }));
    const client = jobs[0]?.client;
    if (client !== undefined) this.detached(() => this.pump(client));
    return Promise.resolve();
  }

  start(handler: RoomJobHandler): void {
    this.handler = handler;
    [...this.lines.keys()].forEach((client) => this.pump(client));
  }

  async stop(): Promise<void> {
    this.shutdown.abort();
    this.timers.forEach((timer) => clearTimeout(timer));
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  depth(): Promise<Map<string, number>> {
    const depths = new Map<string, number>();
    for (const [client, line] of this.lines) depths.set(client, line.length + (this.working.get(client) ?? 0));
    return Promise.resolve(depths);
  }

  private lineOf(client: string): Waiting[] {
    let line = this.lines.get(client);
    if (!line) this.lines.set(client, (line = []));
    return line;
  }

  private pump(client: string): void {
    const handler = this.handler;
    const line = this.lineOf(client);
    while (handler && !this.shutdown.signal.aborted && line.length > 0 && (this.working.get(client) ?? 0) < this.settings.concurrency) {
      const waiting = line.shift()!;
      this.working.set(client, (this.working.get(client) ?? 0) + 1);
      const run = this.runOne(handler, waiting).finally(() => {
        this.inFlight.delete(run);
        this.working.set(client, this.working.get(client)! - 1);
        this.pump(client);
      });
      this.inFlight.add(run);
    }
  }

  private async runOne(handler: RoomJobHandler, waiting: Waiting): Promise<void> {
    try {
      await handler.run(waiting.job, this.shutdown.signal);
    } catch (error) {
      if (error instanceof RetryRoomLater) return this.later(waiting, error.delayMs);
      waiting.failures++;
      if (waiting.failures < ROOM_JOB_ATTEMPTS) return this.later(waiting, ROOM_JOB_BACKOFF_MS * 2 ** (waiting.failures - 1));
      await handler.giveUp(waiting.job, error).catch((cause: unknown) => {
        this.logger.error(`Batch room ${waiting.job.room.roomId} could not be recorded failed: ${(cause as Error).message}`);
      });
    }
  }

  private later(waiting: Waiting, delayMs: number): void {
    if (this.shutdown.signal.aborted) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.lineOf(waiting.job.client).push(waiting);
      this.pump(waiting.job.client);
    }, delayMs);
    this.timers.add(timer);
  }
}
