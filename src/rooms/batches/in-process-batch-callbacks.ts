import { BatchCallbackSender, CALLBACK_RETRY_FOR_MS, callbackRetryDelayMs } from './batch-callback-sender.js';
import { BatchCallbacks } from './batch-callbacks.js';
import type { BatchEvents } from './batch-events.js';
import type { BatchStore } from './batch-store.js';

/** Callbacks of a gateway without Redis: retried on timers in this process, lost with it. */
export class InProcessBatchCallbacks extends BatchCallbacks {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly scheduled = new Set<string>();

  constructor(
    store: BatchStore,
    events: BatchEvents,
    private readonly sender: BatchCallbackSender,
  ) {
    super(store, events);
  }

  protected schedule(client: string, batchId: string, endedAt: number): Promise<void> {
    const key = `${client}\n${batchId}`;
    if (this.scheduled.has(key)) return Promise.resolve();
    this.scheduled.add(key);
    const attempt = (made: number): void => {
      this.sender.deliver(client, batchId).then(
        () => this.scheduled.delete(key),
        (error: unknown) => {
          const delay = callbackRetryDelayMs(made + 1);
          if (Date.now() + delay - endedAt > CALLBACK_RETRY_FOR_MS) {
            this.scheduled.delete(key);
            this.logger.warn(`The callback of batch ${batchId} was given up after ${made + 1} attempts: ${(error as Error).message}`);
            return;
          }
          this.logger.warn(`The callback of batch ${batchId} failed (${(error as Error).message}); retrying in ${delay} ms`);
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            attempt(made + 1);
          }, delay);
          timer.unref();
          this.timers.add(timer);
        },
      );
    };
    attempt(0);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.timers.forEach((timer) => clearTimeout(timer));
    this.timers.clear();
    return Promise.resolve();
  }
}
