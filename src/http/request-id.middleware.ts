import { randomUUID } from 'node:crypto';
import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';

export const REQUEST_ID_HEADER = 'X-Request-Id';

/** A caller's id is kept only if it is short and plain, so it is safe in headers and logs. */
const ACCEPTABLE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface RequestWithId extends Request {
  requestId?: string;
}

/** Gives every request an id (the caller's, or a new one) and echoes it on every response. */
@Injectable()
export class RequestIdMiddleware implements NestMiddleware {
  use(request: RequestWithId, response: Response, next: NextFunction): void {
    const given = request.header(REQUEST_ID_HEADER);
    const id = given !== undefined && ACCEPTABLE_ID.test(given) ? given : randomUUID();
    request.requestId = id;
    response.setHeader(REQUEST_ID_HEADER, id);
    next();
  }
}
