import { performance } from 'node:perf_hooks';
import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import type { Level, Logger } from 'pino';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import { answeredStatus, CLIENT_CLOSED_STATUS } from '../http/client-went-away.js';
import { matchedRoute } from '../http/matched-route.js';
import { refusalReasonOf } from '../http/refusal-reason.js';
import { currentRequestProgress, type RequestProgress } from '../http/request-progress.js';
import type { RequestWithId } from '../http/request-id.middleware.js';
import { PinoLogger } from './pino-logger.js';
import { RefusalLog } from './refusal-log.js';
import { newRequestLogContext, requestContext, type RequestLogContext } from './request-context.js';

export const REQUEST_LOG_CONTEXT = 'RequestLog';

const MAX_PATH_LENGTH = 256;
const MAX_ROOM_ID_LENGTH = 64;

/** Probes and scrapes: frequent, uninteresting while they succeed. */
function isProbe(method: string, path: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  return path === '/metrics' || path === '/health' || path.startsWith('/health/');
}

/** 5xx error, 4xx warn, else info; probes and scrapes only at debug. */
export function requestLogLevel(method: string, path: string, status: number): Level {
  if (isProbe(method, path)) return 'debug';
  if (status >= 500) return 'error';
  if (status >= 400) return 'warn';
  return 'info';
}

type LoggedRequest = Request & RequestWithId & AuthenticatedRequest;

/** The path alone: no query string (it may carry anything a caller put there). */
export function pathOf(request: Pick<Request, 'originalUrl' | 'url'>): string {
  const url = request.originalUrl ?? request.url ?? '';
  const end = url.search(/[?#]/);
  const path = end === -1 ? url : url.slice(0, end);
  return path.length > MAX_PATH_LENGTH ? `${path.slice(0, MAX_PATH_LENGTH)}…` : path;
}

/** `roomId` from a parsed JSON body, when it is a string; nothing else of the body is logged. */
export function roomIdOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const roomId = (body as { roomId?: unknown }).roomId;
  if (typeof roomId !== 'string') return undefined;
  return roomId.length > MAX_ROOM_ID_LENGTH ? `${roomId.slice(0, MAX_ROOM_ID_LENGTH)}…` : roomId;
}

/** The fields of one request line; its message repeats the first four. */
type RequestLogFields = Record<string, unknown> & { method: string; path: string; status: number; durationMs: number };

/** The fields of one request line (its requestId comes from the line's bindings). Undefined fields are left out. */
export function requestLogFields(
  request: LoggedRequest,
  response: Response,
  context: RequestLogContext,
  durationMs: number,
): RequestLogFields {
  const status = answeredStatus(response);
  return {
    method: request.method,
    path: pathOf(request),
    route: matchedRoute(request),
    status,
    durationMs: round(durationMs),
    clientId: request.client?.clientId,
    roomId: roomIdOf(request.body),
    zegoCode: context.zegoCode,
    zegoRequestId: context.zegoRequestId,
    vendorAttempts: context.vendorAttempts > 0 ? context.vendorAttempts : undefined,
    vendorOutcome: context.vendorOutcome,
    limiterWaitMs: context.limiterWaits > 0 ? round(context.limiterWaitMs) : undefined,
    limiterOutcome: context.limiterOutcome,
    // Not when Node's HTTP server answered for us (a malformed body): the client did not leave.
    aborted: status === CLIENT_CLOSED_STATUS ? true : undefined,
  };
}

/**
 * One line per request, written when its response closed: finished, or the caller hung up first.
 * Opens the request context the vendor-call events are recorded into (RequestContextRecorder), and
 * shapes the line from it: flat fields, our level and message. A line the level or the refusal
 * sampling leaves out costs nothing but that decision: no per-request child logger, no fields.
 */
@Injectable()
export class RequestLogMiddleware implements NestMiddleware {
  private readonly lines: Logger;

  constructor(
    logger: PinoLogger,
    private readonly refusals: RefusalLog,
  ) {
    this.lines = logger.pino.child({ context: REQUEST_LOG_CONTEXT });
  }

  use(request: LoggedRequest, response: Response, next: NextFunction): void {
    const context = newRequestLogContext();
    const startedAt = performance.now();
    const progress = currentRequestProgress();
    response.once('close', () => this.write(request, response, context, startedAt, progress));
    requestContext.run(context, next);
  }

  private write(
    request: LoggedRequest,
    response: Response,
    context: RequestLogContext,
    startedAt: number,
    progress: RequestProgress | undefined,
  ): void {
    try {
      const status = answeredStatus(response);
      const level = this.refusals.lineLevel(
        {
          status,
          client: request.client?.clientId,
          reason: refusalReasonOf(response),
          reachedVendor: context.vendorAttempts > 0,
        },
        requestLogLevel(request.method, pathOf(request), status),
      );
      if (level === 'silent' || !this.lines.isLevelEnabled(level)) return;
      const line = requestLogFields(request, response, context, performance.now() - startedAt);
      const stages = progress?.stageTimes();
      // Where the time went, once it went anywhere but the gateway's own code.
      if (stages !== undefined && Object.keys(stages).length > 1) line.stagesMs = roundedTimes(stages);
      const suffix = line.aborted ? ' (client closed the connection)' : '';
      this.lines[level](
        { requestId: request.requestId, ...line },
        `${line.method} ${line.path} ${line.status} ${line.durationMs} ms${suffix}`,
      );
    } catch {
      // A log line must never break a request (it is written from the response's events).
    }
  }
}

function roundedTimes(times: Record<string, number>): Record<string, number> {
  const rounded: Record<string, number> = {};
  for (const [name, ms] of Object.entries(times)) rounded[name] = round(ms);
  return rounded;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
