import { Logger } from '@nestjs/common';
import { BatchEvents } from './batch-events.js';
import type { BatchStore } from './batch-store.js';

/**
 * What happens when a batch ends (its last room ended, or it was cancelled with nothing on its
 * way): it is counted, and its callback, if it has one, is delivered. The same batch may be
 * reported ended twice (a room finished again after a lapsed lock): delivery is keyed by the batch,
 * so its callback is still sent once.
 */
export abstract class BatchCallbacks {
  protected readonly logger = new Logger('BatchCallbacks');

  constructor(
    protected readonly store: BatchStore,
    private readonly events: BatchEvents,
  ) {}

  async batchEnded(client: string, batchId: string): Promise<void> {
    const summary = await this.store.summary(client, batchId);
    if (!summary?.finishedAt || (summary.status !== 'done' && summary.status !== 'cancelled')) return;
    const endedAt = Date.parse(summary.finishedAt);
    this.events.batchEnded({ client, status: summary.status, durationMs: endedAt - Date.parse(summary.createdAt) });
    const delivery = await this.store.delivery(client, batchId);
    if (delivery?.callbackUrl !== undefined) await this.schedule(client, batchId, endedAt);
  }

  /** Delivers the batch's callback, retrying with backoff until CALLBACK_RETRY_FOR_MS after endedAt. */
  protected abstract schedule(client: string, batchId: string, endedAt: number): Promise<void>;

  /** Stops delivering (shutdown): what is durable is delivered by the fleet later. */
  abstract stop(): Promise<void>;
}
