import { type ArgumentMetadata, ValidationPipe } from '@nestjs/common';
import type { FieldError } from './error-body.js';
import { markBodyRefusal } from './refused-bodies.js';
import { fieldPath, RequestValidationError } from './request-validation.error.js';

/**
 * Validates every @Body DTO: unknown fields are errors, nothing is coerced (a "300" is not 300),
 * and the 400 lists every offending field without echoing the submitted values.
 */
export function requestValidationPipe(): ValidationPipe {
  return new RequestValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    stopAtFirstError: true,
    transformOptions: { enableImplicitConversion: false },
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => RequestValidationError.fromValidationErrors(errors),
  });
}

/**
 * Keys that never reach the whitelist check: Nest's ValidationPipe deletes `__proto__`,
 * `constructor` and `prototype`, and class-transformer skips any key the DTO instance already has
 * as an inherited member (`toString`, `valueOf`, `hasOwnProperty`, ...). No DTO field has such a
 * name, so each is an unknown field.
 */
function isSilentlyDropped(key: string): boolean {
  return key === 'prototype' || key in Object.prototype;
}

/**
 * Reports the keys that would be dropped without a word as unknown fields, like any other, so
 * that such a body is a 400 and not silently accepted without them. A key inside a value that is
 * refused as a whole (`attributes` sent as an object, not a list) is no field of its own: only
 * that value is named, as for any other key in it.
 */
class RequestValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    try {
      return await this.validated(value, metadata);
    } catch (error) {
      // A verdict on the body alone: the same bytes get the same one (RefusedBodies).
      if (metadata.type === 'body' && error instanceof RequestValidationError) markBodyRefusal(error);
      throw error;
    }
  }

  private async validated(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    // Looked for first: the pipe deletes some of these keys from the body as it transforms it.
    const stripped = this.toValidate(metadata) ? strippedKeys(value, '', []) : [];
    if (stripped.length === 0) return super.transform(value, metadata);
    let others: FieldError[] = [];
    try {
      await super.transform(value, metadata);
    } catch (error) {
      if (!(error instanceof RequestValidationError)) throw error;
      others = error.fieldErrors;
    }
    // A set, not a comparison of every stripped key with every other error: that grows with their product.
    const refusedWhole = new Set(others.map((other) => other.field));
    const ownFields = stripped
      .filter(({ inside }) => !inside.some((path) => refusedWhole.has(path)))
      .map(({ field, reason }) => ({ field, reason }));
    throw new RequestValidationError([...ownFields, ...others]);
  }
}

interface StrippedKey extends FieldError {
  /** The paths of the values it lies inside (`attributes`, `attributes[0]` for `attributes[0].toString`). */
  readonly inside: readonly string[];
}

/** Own stripped keys anywhere in plain JSON data, with the path a client would use. */
function strippedKeys(value: unknown, path: string, inside: readonly string[], seen = new Set<object>()): StrippedKey[] {
  if (typeof value !== 'object' || value === null || seen.has(value)) return [];
  seen.add(value);
  const within = path === '' ? inside : [...inside, path];
  if (Array.isArray(value)) {
    return value.flatMap((item, index) => strippedKeys(item, `${path}[${index}]`, within, seen));
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return [];
  return Object.keys(value).flatMap((key) => {
    const field = fieldPath(path, key);
    // An unknown key is reported once; what it holds does not matter.
    if (isSilentlyDropped(key)) return [{ field, reason: `property ${key} should not exist`, inside: within }];
    return strippedKeys((value as Record<string, unknown>)[key], field, within, seen);
  });
}
