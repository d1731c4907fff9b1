import { performance } from 'node:perf_hooks';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import { matchedRoute } from '../http/matched-route.js';
import type { RequestWithId } from '../http/request-id.middleware.js';
import type { RequestStage } from '../http/request-stage.js';
import { InFlightRequests, type OpenRequest } from './in-flight-requests.js';

/**
 * A request still open this long after its deadline is overdue: every answer the gateway gives
 * at its deadline (and the bookkeeping after it, such as finishing an idempotency record) is
 * written well within it, so one past it is stuck somewhere, and says where.
 */
export const OVERDUE_AFTER_DEADLINE_MS = 1000;

/** How often the open requests are looked at: an overdue request is reported within this of becoming one. */
export const OVERDUE_CHECK_INTERVAL_MS = 250;

/** What is said about an overdue request: identifiers and timings only, never a key, a header or the body. */
export interface OverdueRequest {
  requestId?: string;
  method: string;
  /** The route pattern that matched (`unmatched` before routing, or for unknown URLs), never the raw URL. */
  route: string;
  /** Once authenticated. */
  clientId?: string;
  /** How long it has been open. */
  openMs: number;
  /** The deadline it is past, from its arrival. */
  deadlineMs: number;
  waitingOn: RequestStage;
}

type OverdueListener = (overdue: OverdueRequest) => void;

/**
 * Makes a request that outlives its deadline loud: on a timer, every request still open past
 * its deadline plus OVERDUE_AFTER_DEADLINE_MS is reported once, as a warning naming what it is
 * waiting on, and to the listeners (the overdue metric). It never answers or ends a request.
 */
@Injectable()
export class OverdueRequestWatch implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('OverdueRequests');
  /** Requests already reported; they leave with the registry's entry when they close. */
  private readonly reported = new WeakSet<OpenRequest>();
  private readonly listeners = new Set<OverdueListener>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly inFlight: InFlightRequests) {}

  onOverdue(listener: OverdueListener): void {
    this.listeners.add(listener);
  }

  onApplicationBootstrap(): void {
    // Unref'd: watching must never keep the process alive.
    this.timer ??= setInterval(() => this.check(), OVERDUE_CHECK_INTERVAL_MS).unref();
  }

  /** Nest's close(), the end of the graceful shutdown (the watch goes on while requests drain). */
  onApplicationShutdown(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reports each open request past its deadline plus OVERDUE_AFTER_DEADLINE_MS at `now`, once. */
  check(now = performance.now()): void {
    for (const open of this.inFlight.requests()) {
      if (this.reported.has(open) || now - open.progress.deadline <= OVERDUE_AFTER_DEADLINE_MS) continue;
      this.reported.add(open);
      this.report(overdueRequest(open, now));
    }
  }

  private report(overdue: OverdueRequest): void {
    this.logger.warn(overdueMessage(overdue), overdue);
    for (const listener of this.listeners) {
      try {
        listener(overdue);
      } catch {
        // A listener (the metric) must not stop the others, nor the next request's report.
      }
    }
  }
}

function overdueRequest({ request, progress }: OpenRequest, now: number): OverdueRequest {
  const { requestId, client } = request as RequestWithId & AuthenticatedRequest;
  return {
    requestId,
    method: request.method,
    route: matchedRoute(request) ?? 'unmatched',
    clientId: client?.clientId,
    openMs: Math.round(now - progress.arrivedAt),
    deadlineMs: progress.deadlineMs,
    waitingOn: progress.stage,
  };
}

/** e.g. `POST /rooms (request 7f3c…, client team-a) still open after 11250 ms, past its 10000 ms deadline: waiting on outbound slot` */
export function overdueMessage(overdue: OverdueRequest): string {
  const who = [`request ${overdue.requestId ?? 'without id'}`, ...(overdue.clientId === undefined ? [] : [`client ${overdue.clientId}`])];
  return (
    `${overdue.method} ${overdue.route} (${who.join(', ')}) still open after ${overdue.openMs} ms, ` +
    `past its ${overdue.deadlineMs} ms deadline: waiting on ${overdue.waitingOn}`
  );
}
