import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { Request, Response } from 'express';

/** nginx's "client closed request": the caller hung up before the answer was complete. */
export const CLIENT_CLOSED_STATUS = 499;

/** The status a request ended with, as logs and metrics count it: its answer's, or 499 when the caller went away first. */
export function answeredStatus(response: Pick<Response, 'statusCode' | 'writableFinished'>): number {
  return response.writableFinished ? response.statusCode : CLIENT_CLOSED_STATUS;
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
