import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';

/** Counts the requests being served, so shutdown can wait for the last one to finish. */
@Injectable()
export class InFlightRequests {
  private active = 0;
  private readonly idleWaiters = new Set<() => void>();

  get count(): number {
    return this.active;
  }

  track(response: Response): void {
    this.active++;
    // 'close' fires once per response, whether it finished or the client hung up.
    response.once('close', () => {
      this.active--;
      if (this.active === 0) for (const wake of this.idleWaiters) wake();
    });
  }

  /** Resolves true once no request is in flight, or false when `timeoutMs` passed first. */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
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

/** Counts every request from its first middleware on. */
@Injectable()
export class InFlightRequestsMiddleware implements NestMiddleware {
  constructor(private readonly inFlight: InFlightRequests) {}

  use(_request: Request, response: Response, next: NextFunction): void {
    this.inFlight.track(response);
    next();
  }
}
