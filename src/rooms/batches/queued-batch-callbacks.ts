import { InjectQueue, Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import { UnrecoverableError, type Job, type Queue } from 'bullmq';
import { BATCH_CALLBACK_QUEUE } from '../../redis/redis-keys.js';
import { BatchCallbackSender, CALLBACK_RETRY_FOR_MS, callbackRetryDelayMs } from './batch-callback-sender.js';
import { BatchCallbacks } from './batch-callbacks.js';
import { BatchEvents } from './batch-events.js';
import { BATCH_STORE, type BatchStore } from './batch-store.js';

interface CallbackJob {
  client: string;
  batchId: string;
  endedAt: number;
}

/** Attempts are bounded by time (CALLBACK_RETRY_FOR_MS), not by count: this only has to be enough. */
const CALLBACK_ATTEMPTS = 1000;

/**
 * The fleet's callbacks: one BullMQ job per ended batch (its id is the batch's, so a batch reported
 * ended twice is delivered once), worked by every replica, retried with backoff for an hour, and
 * durable as Redis is: a replica that dies mid-delivery leaves it to another.
 */
@Injectable()
export class QueuedBatchCallbacks extends BatchCallbacks {
  constructor(
    @Inject(BATCH_STORE) store: BatchStore,
    events: BatchEvents,
    @InjectQueue(BATCH_CALLBACK_QUEUE) private readonly queue: Queue<CallbackJob>,
  ) {
    super(store, events);
  }

  protected async schedule(client: string, batchId: string, endedAt: number): Promise<void> {
    await this.queue.add(
      'callback',
      { client, batchId, endedAt },
      {
        jobId: `${client}.${batchId}`,
        attempts: CALLBACK_ATTEMPTS,
        backoff: { type: 'callback' },
        removeOnComplete: { age: 3600 },
        removeOnFail: { age: 86_400 },
      },
    );
  }

  async stop(): Promise<void> {
    // The queue and its worker are closed by @nestjs/bullmq at shutdown.
  }
}

@Processor(BATCH_CALLBACK_QUEUE, {
  concurrency: 4,
  settings: { backoffStrategy: (attemptsMade: number) => callbackRetryDelayMs(attemptsMade) },
})
export class BatchCallbackProcessor extends WorkerHost {
  constructor(private readonly sender: BatchCallbackSender) {
    super();
  }

  async process(job: Job<CallbackJob>): Promise<void> {
    const { client, batchId, endedAt } = job.data;
    try {
      await this.sender.deliver(client, batchId);
    } catch (error) {
      const nextAt = Date.now() + callbackRetryDelayMs(job.attemptsMade + 1);
      if (nextAt - endedAt > CALLBACK_RETRY_FOR_MS) {
        throw new UnrecoverableError(`given up after an hour: ${(error as Error).message}`);
      }
      throw error;
    }
  }
}
