import { performance } from 'node:perf_hooks';
import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import type { Level, Logger } from 'pino';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import { matchedRoute } from '../http/matched-route.js';
import type { RequestWithId } from '../http/request-id.middleware.js';
import { PinoLogger } from './pino-logger.js';
import { newRequestLogContext, requestContext, type RequestLogContext } from './request-context.js';

export const REQUEST_LOG_CONTEXT = 'RequestLog';

/** nginx's "client closed request": the caller hung up before the answer was complete. */
export const CLIENT_CLOSED_STATUS = 499;

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

/** The fields of one request line. Undefined fields are left out of the line. */
export function requestLogFields(
  request: LoggedRequest,
  response: Response,
  context: RequestLogContext,
  durationMs: number,
  finished: boolean,
): Record<string, unknown> {
  const status = finished || response.headersSent ? response.statusCode : CLIENT_CLOSED_STATUS;
  return {
    requestId: request.requestId,
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
    aborted: finished ? undefined : true,
  };
}

/**
 * Writes one line per request when its response finished, or when the caller hung up first.
 * Opens the request context the vendor-call events are recorded into (RequestContextRecorder).
 */
@Injectable()
export class RequestLogMiddleware implements NestMiddleware {
  private readonly log: Logger;

  constructor(logger: PinoLogger) {
    this.log = logger.pino.child({ context: REQUEST_LOG_CONTEXT });
  }

  use(request: LoggedRequest, response: Response, next: NextFunction): void {
    const context = newRequestLogContext();
    const startedAt = performance.now();
    let written = false;
    const write = (finished: boolean): void => {
      if (written) return;
      written = true;
      try {
        const fields = requestLogFields(request, response, context, performance.now() - startedAt, finished);
        const level = requestLogLevel(request.method, fields.path as string, fields.status as number);
        const suffix = finished ? '' : ' (client closed the connection)';
        this.log[level](fields, `${request.method} ${fields.path} ${fields.status} ${fields.durationMs} ms${suffix}`);
      } catch {
        // A log line must never break a request.
      }
    };
    response.once('finish', () => write(true));
    response.once('close', () => write(response.writableFinished));
    requestContext.run(context, next);
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
