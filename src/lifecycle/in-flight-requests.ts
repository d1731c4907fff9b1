import { performance } from 'node:perf_hooks';
import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { APP_CONFIG } from '../config/config.module.js';
import { RequestProgress, runWithRequestProgress } from '../http/request-progress.js';

/** A request being served: the request itself (read only when it must be described) and its progress. */
export interface OpenRequest {
  readonly request: Request;
  readonly progress: RequestProgress;
}

/**
 * The requests being served, from their first middleware until their response closes: shutdown
 * waits for the last one to finish, and the overdue watch looks for those past their deadline.
 */
@Injectable()
export class InFlightRequests {
  private readonly open = new Set<OpenRequest>();
  private readonly idleWaiters = new Set<() => void>();

  get count(): number {
    return this.open.size;
  }

  /** The open requests, oldest first. */
  requests(): IterableIterator<OpenRequest> {
    return this.open.values();
  }

  track(request: Request, response: Response, progress: RequestProgress): void {
    const entry: OpenRequest = { request, progress };
    this.open.add(entry);
    // 'close' fires once per response, whether it finished or the client hung up.
    response.once('close', () => {
      this.open.delete(entry);
      if (this.open.size === 0) for (const wake of this.idleWaiters) wake();
    });
  }

  /** Resolves true once no request is in flight, or false when `timeoutMs` passed first. */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.open.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (value: boolean): void => {
        clearTimeout(timer);
        this.idleWaiters.delete(wake);
        resolve(value);
      };
      const wake = (): void => finish(true);
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.idleWaiters.add(wake);
    });
  }
}

/**
 * The request's arrival: the first global middleware. Counts it in flight and starts its one
 * deadline (ZEGO_CALL_DEADLINE_MS from now), carried with what it waits on (RequestProgress) in
 * the async context of everything that serves it.
 */
@Injectable()
export class InFlightRequestsMiddleware implements NestMiddleware {
  constructor(
    @Inject(APP_CONFIG) private readonly config: { readonly zego: { readonly callDeadlineMs: number } },
    private readonly inFlight: InFlightRequests,
  ) {}

  use(request: Request, response: Response, next: NextFunction): void {
    const progress = new RequestProgress(performance.now(), this.config.zego.callDeadlineMs);
    this.inFlight.track(request, response, progress);
    runWithRequestProgress(progress, next);
  }
}
