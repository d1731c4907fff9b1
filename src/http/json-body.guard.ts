import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { GatewayError } from './gateway-error.js';
import type { RequestWithBody } from './json-body.middleware.js';
import { RequestValidationError } from './request-validation.error.js';

/** Raises the body problem JsonBodyMiddleware found, after authentication has passed. */
@Injectable()
export class JsonBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<RequestWithBody>();
    if (request.bodyError) throw request.bodyError;
    if (request.body === undefined) {
      throw new GatewayError(400, 'A JSON request body is required');
    }
    if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body)) {
      throw new RequestValidationError([{ field: 'body', reason: 'must be a JSON object' }]);
    }
    return true;
  }
}
