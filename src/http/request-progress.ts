import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import type { RequestStage } from './request-stage.js';

/**
 * One request's deadline and what it is waiting on now. Created when the request arrives (the
 * first middleware, InFlightRequestsMiddleware) and carried in the async context of everything
 * that serves it, so that code below the controllers, which must not see HTTP objects, can keep
 * to the deadline and name its waits: this object is plain data, not a request. Times are on
 * performance.now()'s clock (monotonic, like every deadline in the gateway).
 */
export class RequestProgress {
  private current: RequestStage = 'handler';
  private enteredAt: number;
  private readonly spent = new Map<RequestStage, number>();

  constructor(
    /** When the request arrived. */
    readonly arrivedAt: number,
    /** How long it may take from its arrival (ZEGO_CALL_DEADLINE_MS). */
    readonly deadlineMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.enteredAt = arrivedAt;
  }

  /** When it must be answered by. */
  get deadline(): number {
    return this.arrivedAt + this.deadlineMs;
  }

  get stage(): RequestStage {
    return this.current;
  }

  /** Names what the request waits on from now on; the function returned goes back to the stage it was in. */
  enter(stage: RequestStage): () => void {
    const previous = this.current;
    this.switchTo(stage);
    return () => this.switchTo(previous);
  }

  /**
   * How long the request has spent in each stage it passed, in ms, in the order first entered:
   * where its time went (the request log's `stagesMs`). Together they add up to its age.
   */
  stageTimes(): Record<string, number> {
    const times: Record<string, number> = {};
    const ongoing = this.now() - this.enteredAt;
    for (const [stage, ms] of this.spent) times[stage] = ms + (stage === this.current ? ongoing : 0);
    if (!this.spent.has(this.current)) times[this.current] = ongoing;
    return times;
  }

  private switchTo(stage: RequestStage): void {
    const at = this.now();
    this.spent.set(this.current, (this.spent.get(this.current) ?? 0) + (at - this.enteredAt));
    this.current = stage;
    this.enteredAt = at;
  }
}

const context = new AsyncLocalStorage<RequestProgress>();

/** Runs `serve` (the rest of the request's middleware and handling) with `progress` as the request's. */
export function runWithRequestProgress<T>(progress: RequestProgress, serve: () => T): T {
  return context.run(progress, serve);
}

/** The progress of the request being served, or undefined outside one (a batch, start-up). */
export function currentRequestProgress(): RequestProgress | undefined {
  return context.getStore();
}

/**
 * Runs `work` as the current request's `stage`, then returns to the stage before. Outside a
 * request it just runs `work`.
 */
export async function inRequestStage<T>(stage: RequestStage, work: () => Promise<T>): Promise<T> {
  const leave = context.getStore()?.enter(stage);
  try {
    return await work();
  } finally {
    leave?.();
  }
}
