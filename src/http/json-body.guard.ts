import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { RequestWithBody } from './json-body.middleware.js';
import { RequestValidationError } from './request-validation.error.js';

/** Raises the body problem JsonBodyMiddleware found, after authentication has passed. */
@Injectable()
export class JsonBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<RequestWithBody>();
    if (request.bodyError) throw request.bodyError;
    if (request.body === undefined) {
      throw new RequestValidationError([{ field: 'body', reason: 'is required: a JSON object' }]);
    }
    if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body)) {
      throw new RequestValidationError([{ field: 'body', reason: 'must be a JSON object' }]);
    }
    if (nestingDepth(request.body) > MAX_NESTING_DEPTH) {
      throw new RequestValidationError([
        { field: 'body', reason: `must not nest deeper than ${MAX_NESTING_DEPTH} levels` },
      ]);
    }
    return true;
  }
}

/**
 * No valid request nests deeper than 3 levels; capping depth here keeps the recursive walks of
 * validation and transformation from overflowing the stack on a crafted body (a 500).
 */
export const MAX_NESTING_DEPTH = 16;

/** Depth of plain JSON data, measured without recursion so the measurement itself is safe. */
export function nestingDepth(value: unknown): number {
  let deepest = 0;
  const pending: { value: unknown; depth: number }[] = [{ value, depth: 1 }];
  while (pending.length > 0) {
    const { value: current, depth } = pending.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    deepest = Math.max(deepest, depth);
    if (deepest > MAX_NESTING_DEPTH) return deepest;
    for (const child of Object.values(current)) pending.push({ value: child, depth: depth + 1 });
  }
  return deepest;
}
