import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import express, { type NextFunction, type Request, type Response } from 'express';
import { APP_CONFIG } from '../config/config.module.js';
import { GatewayError } from './gateway-error.js';
import type { HttpSettings } from './http.settings.js';
import { currentRequestProgress } from './request-progress.js';
import { RequestValidationError } from './request-validation.error.js';

export interface RequestWithBody extends Request {
  /** Why the body could not be used; raised by JsonBodyGuard once the caller is authenticated. */
  bodyError?: GatewayError;
}

/**
 * Parses JSON bodies but defers any complaint about them, so that an unauthenticated caller
 * learns nothing but 401. Compressed bodies are refused rather than inflated: a small gzip can
 * expand far beyond the size limit.
 */
@Injectable()
export class JsonBodyMiddleware implements NestMiddleware {
  private readonly parse: express.RequestHandler;
  /** `METHOD path` -> the parser of a route with a limit of its own. */
  private readonly routeParsers: Map<string, express.RequestHandler>;

  constructor(@Inject(APP_CONFIG) config: { readonly http: HttpSettings }) {
    const parser = (limit: number): express.RequestHandler =>
      express.json({ limit, inflate: false, strict: false, type: 'application/json' });
    this.parse = parser(config.http.bodyLimitBytes);
    this.routeParsers = new Map(config.http.routeBodyLimits.map(({ method, path, bytes }) => [`${method} ${path}`, parser(bytes)]));
  }

  use(request: RequestWithBody, response: Response, next: NextFunction): void {
    if (!hasBody(request)) return next();
    if (!request.is('application/json')) {
      request.bodyError = new GatewayError(415, 'Content-Type must be application/json');
      request.resume();
      return next();
    }
    // Receiving the body is the client's part: a request overdue here names it.
    const leave = currentRequestProgress()?.enter('request body');
    const parse = this.routeParsers.get(`${request.method} ${request.path}`) ?? this.parse;
    parse(request, response, (error?: unknown) => {
      leave?.();
      if (error) request.bodyError = bodyError(error, request);
      next();
    });
  }
}

function hasBody(request: Request): boolean {
  return request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;
}

function bodyError(error: unknown, request: Request): GatewayError {
  const type = (error as { type?: string }).type;
  switch (type) {
    case 'entity.too.large':
      return new GatewayError(413, 'Request body is larger than the limit');
    case 'encoding.unsupported':
      return new GatewayError(415, `Content-Encoding ${request.headers['content-encoding'] ?? ''} is not accepted; send identity`);
    case 'charset.unsupported':
      return new GatewayError(415, 'Request body charset must be utf-8');
    // 400s name the field like every validation error: here the body as a whole.
    case 'entity.parse.failed':
      return new RequestValidationError([{ field: 'body', reason: 'must be valid JSON' }]);
    default:
      return new RequestValidationError([{ field: 'body', reason: 'could not be read' }]);
  }
}
