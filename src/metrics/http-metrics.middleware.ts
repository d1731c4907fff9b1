import { performance } from 'node:perf_hooks';
import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import { answeredStatus } from '../http/client-went-away.js';
import { matchedRoute } from '../http/matched-route.js';
import { GatewayMetrics } from './gateway-metrics.js';

/**
 * Counts every answer by route (the route pattern, never the raw path, so unknown URLs cannot
 * grow the label set), status and client id. A request the client abandoned counts as status 499.
 */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: GatewayMetrics) {}

  use(request: Request, response: Response, next: NextFunction): void {
    const startedAt = performance.now();
    response.once('close', () => {
      const route = matchedRoute(request) ?? 'unmatched';
      const status = String(answeredStatus(response));
      const client = (request as AuthenticatedRequest).client?.clientId ?? 'none';
      this.metrics.httpRequests.inc({ method: request.method, route, status, client });
      this.metrics.httpDuration.observe({ method: request.method, route, status }, (performance.now() - startedAt) / 1000);
    });
    next();
  }
}
