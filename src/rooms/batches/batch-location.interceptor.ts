import { createParamDecorator, type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import type { Response } from 'express';
import { map, type Observable } from 'rxjs';
import type { RequestWithId } from '../../http/request-id.middleware.js';

/** Points a 202 at the batch it accepted: `Location: /rooms/batches/<batchId>`. */
@Injectable()
export class BatchLocationInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler<{ batchId: string }>): Observable<{ batchId: string }> {
    const response = context.switchToHttp().getResponse<Response>();
    return next.handle().pipe(
      map((batch) => {
        response.setHeader('Location', `/rooms/batches/${batch.batchId}`);
        return batch;
      }),
    );
  }
}

/** Handler parameter: the request's id (RequestIdMiddleware), which a batch's rooms carry into their log lines. */
export const RequestIdOf = createParamDecorator(
  (_data: unknown, context: ExecutionContext): string => context.switchToHttp().getRequest<RequestWithId>().requestId ?? 'unknown',
);
