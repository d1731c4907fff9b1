import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import type { Level } from 'pino';
import { pinoHttp, type HttpLogger } from 'pino-http';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import { answeredStatus, CLIENT_CLOSED_STATUS } from '../http/client-went-away.js';
import { matchedRoute } from '../http/matched-route.js';
import { refusalReasonOf } from '../http/refusal-reason.js';
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

/** The fields of one request line; its message repeats the first four (none when taking them failed). */
type RequestLogFields = Record<string, unknown> & { method?: string; path?: string; status?: number; durationMs?: number };

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

/** What the line of a request in flight is made of, besides the request and response themselves. */
interface InFlight {
  context: RequestLogContext;
  startedAt: number;
  /** The line's fields, once taken: its message says the same. */
  fields?: RequestLogFields;
}

/**
 * One line per request (pino-http), written when its response finished, or when the caller hung
 * up first. Opens the request context the vendor-call events are recorded into
 * (RequestContextRecorder), and shapes the line from it: flat fields, our level and message.
 */
@Injectable()
export class RequestLogMiddleware implements NestMiddleware {
  private readonly inFlight = new WeakMap<object, InFlight>();
  private readonly httpLogger: HttpLogger;

  constructor(logger: PinoLogger, refusals: RefusalLog) {
    const fields = (req: IncomingMessage, res: ServerResponse): RequestLogFields => {
      try {
        const request = req as LoggedRequest;
        const inFlight = this.inFlight.get(request)!;
        inFlight.fields ??= requestLogFields(request, res as Response, inFlight.context, performance.now() - inFlight.startedAt);
        return inFlight.fields;
      } catch {
        // A log line must never break a request (it is written from the response's events).
        return {};
      }
    };
    const message = (req: IncomingMessage, res: ServerResponse): string => {
      const line = fields(req, res);
      const suffix = line.aborted ? ' (client closed the connection)' : '';
      return `${line.method} ${line.path} ${line.status} ${line.durationMs} ms${suffix}`;
    };
    this.httpLogger = pinoHttp({
      logger: logger.pino.child({ context: REQUEST_LOG_CONTEXT }),
      // The line carries our fields only, and the request id as `requestId`.
      quietReqLogger: true,
      quietResLogger: true,
      customAttributeKeys: { reqId: 'requestId' },
      genReqId: (req) => (req as LoggedRequest).requestId ?? randomUUID(),
      customLogLevel: (req, res) => {
        const request = req as LoggedRequest;
        const status = answeredStatus(res);
        const level = requestLogLevel(req.method ?? '', pathOf(request), status);
        const context = this.inFlight.get(request)?.context;
        return refusals.lineLevel(
          {
            status,
            client: request.client?.clientId,
            reason: refusalReasonOf(res),
            reachedVendor: (context?.vendorAttempts ?? 0) > 0,
          },
          level,
        );
      },
      customSuccessObject: (req, res) => fields(req, res),
      customErrorObject: (req, res) => fields(req, res),
      customSuccessMessage: (req, res) => message(req, res),
      customErrorMessage: (req, res) => message(req, res),
    });
  }

  use(request: LoggedRequest, response: Response, next: NextFunction): void {
    const context = newRequestLogContext();
    this.inFlight.set(request, { context, startedAt: performance.now() });
    requestContext.run(context, () => this.httpLogger(request, response, next));
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
