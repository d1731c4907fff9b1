import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { hasBody } from './json-body-reader.js';

/**
 * How long the rest of a body may take to arrive once the request is answered without reading it
 * (a 401, a 429, a 415, a 413 of a body announced or found too large: JsonBodyGuard, the last
 * guard, reads bodies, and stops at the limit). A client that sent its whole
 * request has its body in within this; one that trickles it has its connection closed.
 */
export const UNREAD_BODY_GRACE_MS = 1000;

/**
 * A request answered before its body was read keeps its connection only if the rest of the body
 * comes promptly: Node reads and drops it to reuse the connection, and a slow or endless body would
 * otherwise hold the socket until HTTP_REQUEST_TIMEOUT_MS. Not `Connection: close` on every such
 * answer: Node parses a body that came in the same packet as the headers only after the request
 * is handled, so nearly every refusal would cost its client a new connection.
 */
@Injectable()
export class UnreadBodyMiddleware implements NestMiddleware {
  use(request: Request, response: Response, next: NextFunction): void {
    if (hasBody(request)) response.once('finish', () => closeUnlessBodyArrives(request));
    next();
  }
}

function closeUnlessBodyArrives(request: Request): void {
  if (request.complete) return;
  const timer = setTimeout(() => {
    if (!request.complete) request.socket.destroy();
  }, UNREAD_BODY_GRACE_MS);
  timer.unref();
  request.once('end', () => clearTimeout(timer));
  request.once('close', () => clearTimeout(timer));
}
