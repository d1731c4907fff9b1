import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { Request, Response } from 'express';
import { nodeRejectionStatus } from './node-http-rejection.js';

/** nginx's "client closed request": the caller hung up before the answer was complete. */
export const CLIENT_CLOSED_STATUS = 499;

/**
 * The status a request ended with, as logs and metrics count it: its answer's; Node's own when its
 * HTTP server rejected the request before we answered (a malformed chunked body, a body slower
 * than HTTP_REQUEST_TIMEOUT_MS: Node wrote that status and closed the connection); otherwise 499,
 * the caller went away first.
 */
export function answeredStatus(
  response: Pick<Response, 'statusCode' | 'writableFinished'> & Partial<Pick<Response, 'headersSent' | 'socket'>>,
): number {
  if (response.writableFinished) return response.statusCode;
  // Node answers only while nothing of ours is on the wire.
  const rejected = response.headersSent === true ? undefined : nodeRejectionStatus(response.socket?.errored);
  return rejected ?? CLIENT_CLOSED_STATUS;
}

/** A signal that aborts when the caller hangs up before we answered, so its queued work can be dropped. */
export function clientGoneSignal(request: Request): AbortSignal {
  const controller = new AbortController();
  const response = request.res!;
  response.once('close', () => {
    if (!response.writableFinished) controller.abort();
  });
  return controller.signal;
}

/** Handler parameter: the request's clientGoneSignal. */
export const ClientGone = createParamDecorator((_data: unknown, context: ExecutionContext): AbortSignal =>
  clientGoneSignal(context.switchToHttp().getRequest<Request>()),
);
