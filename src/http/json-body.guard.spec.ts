import { describe, expect, it } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import { JsonBodyGuard, MAX_NESTING_DEPTH, nestingDepth } from './json-body.guard.js';
import { RequestValidationError } from './request-validation.error.js';

function contextFor(body: unknown): ExecutionContext {
  return {
    switchToHttp: () => ({ getRequest: () => ({ body }) }),
  } as unknown as ExecutionContext;
}

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

describe('nestingDepth', () => {
  it('counts objects and arrays, not scalars', () => {
    expect(nestingDepth(1)).toBe(0);
    expect(nestingDepth({})).toBe(1);
    expect(nestingDepth({ a: [{ b: 1 }] })).toBe(3);
    expect(nestingDepth(nested(7))).toBe(7);
  });

  it('measures a body far deeper than the stack allows without throwing', () => {
    expect(nestingDepth(nested(100_000))).toBeGreaterThan(MAX_NESTING_DEPTH);
  });
});

describe('JsonBodyGuard', () => {
  const guard = new JsonBodyGuard();

  it('accepts a realistic room body', () => {
    const body = { roomId: 'r', attributes: [{ key: 'k', value: 'v' }] };
    expect(guard.canActivate(contextFor(body))).toBe(true);
  });

  it('accepts a body exactly at the depth limit', () => {
    expect(guard.canActivate(contextFor({ x: nested(MAX_NESTING_DEPTH - 1) }))).toBe(true);
  });

  it('refuses a body one level past the limit with a 400 naming the body', () => {
    let thrown: unknown;
    try {
      guard.canActivate(contextFor({ x: nested(MAX_NESTING_DEPTH) }));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RequestValidationError);
    expect((thrown as RequestValidationError).status).toBe(400);
    expect((thrown as RequestValidationError).fieldErrors[0]!.field).toBe('body');
  });

  it('refuses a non-object body', () => {
    expect(() => guard.canActivate(contextFor([1]))).toThrow(RequestValidationError);
  });
});
