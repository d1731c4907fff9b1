import type { ValidationError } from 'class-validator';
import type { FieldError } from './error-body.js';
import { GatewayError } from './gateway-error.js';

/** A 400 that names every offending field, with the path a client would use (`attributes[0].key`). */
export class RequestValidationError extends GatewayError {
  constructor(readonly fieldErrors: FieldError[]) {
    // Field errors reach the filter the one way every GatewayError's do: in details.
    super(400, fieldErrors.map((e) => `${e.field}: ${e.reason}`).join('; '), { fieldErrors });
  }

  static fromValidationErrors(errors: ValidationError[]): RequestValidationError {
    return new RequestValidationError(flatten(errors, ''));
  }
}

function flatten(errors: ValidationError[], prefix: string): FieldError[] {
  return errors.flatMap((error) => {
    const field = fieldPath(prefix, error.property);
    const own = Object.values(error.constraints ?? {}).map((reason) => ({ field, reason }));
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/** The path a client would use for `property` below `prefix` (`attributes[0].key`, `""`). */
export function fieldPath(prefix: string, property: string): string {
  // An empty key still needs a name the client can find: `""`.
  if (property === '') return prefix === '' ? '""' : `${prefix}[""]`;
  if (prefix === '') return property;
  return /^\d+$/.test(property) ? `${prefix}[${property}]` : `${prefix}.${property}`;
}
