import type { INestApplication, NestMiddleware, Type } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { RequestIdMiddleware } from './http/request-id.middleware.js';
import { UnreadBodyMiddleware } from './http/unread-body.middleware.js';
import { InFlightRequestsMiddleware } from './lifecycle/in-flight-requests.js';
import { RequestLogMiddleware } from './logging/request-log.middleware.js';
import { HttpMetricsMiddleware } from './metrics/http-metrics.middleware.js';

/**
 * The global middleware: every request passes it first, once, in this order (the README's request
 * path): counted as in flight (shutdown waits for it, the overdue watch looks at it) and given its
 * deadline from its arrival, given its id, logged and measured when it ends, and its connection
 * closed if it is answered before its body is in. The body itself is read by JsonBodyGuard, the
 * last guard, once the caller is authenticated and within its quota. AppModule provides them.
 */
export const GLOBAL_MIDDLEWARE: readonly Type<NestMiddleware>[] = [
  InFlightRequestsMiddleware,
  RequestIdMiddleware,
  RequestLogMiddleware,
  HttpMetricsMiddleware,
  UnreadBodyMiddleware,
];

/**
 * Mounts GLOBAL_MIDDLEWARE on the Express application itself, with no path, before any route is
 * registered: so every answer passes it, whoever gives it. Nest would mount them as its own
 * middleware only at init, behind the routes registered straight on Express before (Swagger's
 * /docs), and only for paths its pattern matches (not `OPTIONS *`, nor a path that does not
 * decode, such as /%ff).
 */
export function mountGlobalMiddleware(app: INestApplication): void {
  const chain = GLOBAL_MIDDLEWARE.map((type) => app.get(type));
  // One Express layer for the whole chain: each layer of its own would cost every request a
  // router match more, refusals included.
  app.use((request: Request, response: Response, next: NextFunction) => {
    const step = (index: number, error?: unknown): void => {
      if (error !== undefined || index === chain.length) {
        next(error);
        return;
      }
      chain[index]!.use(request, response, (failure?: unknown) => step(index + 1, failure));
    };
    step(0);
  });
}
