import {
  createParamDecorator,
  type CallHandler,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
} from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants.js';
import { Reflector } from '@nestjs/core';
import { from, lastValueFrom, type Observable } from 'rxjs';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import { matchedRoute } from '../http/matched-route.js';
import { IdempotencyService } from './idempotency.service.js';

interface IdempotentRequest extends AuthenticatedRequest {
  /** Set for the handler: this request resumes a key whose earlier attempt ended ambiguous (504). */
  resumesAmbiguousAttempt?: boolean;
}

/**
 * Makes a handler idempotent under the Idempotency-Key header (IdempotencyService): replays,
 * conflicts and claims happen here, around the handler, which sees only the work to do. Runs after
 * the guards, so an unauthenticated or over-quota caller never touches the store. Nest runs pipes
 * inside the handler's call: a body the validation pipe refuses releases the key at once.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(
    private readonly idempotency: IdempotencyService,
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<IdempotentRequest>();
    return from(
      this.idempotency.run({
        request,
        body: request.body,
        route: `${request.method} ${matchedRoute(request) ?? request.path}`,
        successStatus: this.reflector.get<number | undefined>(HTTP_CODE_METADATA, context.getHandler()) ?? 200,
        perform: (resumed) => {
          request.resumesAmbiguousAttempt = resumed;
          return lastValueFrom(next.handle()) as Promise<object>;
        },
      }),
    );
  }
}

/**
 * Handler parameter: true when an earlier attempt under this request's Idempotency-Key ended
 * ambiguous (504) and may have done the work already (IdempotencyInterceptor sets it).
 */
export const ResumesAmbiguousAttempt = createParamDecorator(
  (_data: unknown, context: ExecutionContext): boolean =>
    context.switchToHttp().getRequest<IdempotentRequest>().resumesAmbiguousAttempt === true,
);
