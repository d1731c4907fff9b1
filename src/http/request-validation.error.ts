import type { ValidationError } from 'class-validator';
import type { FieldError } from './error-body.js';
import { GatewayError } from './gateway-error.js';

/**
 * The answer names at most this many fields, and says how many more there were: a body of
 * thousands of bad keys must not get an answer many times its own size.
 */
export const MAX_SHOWN_FIELD_ERRORS = 20;

/** A field's path or reason is shown to this many characters: a key is the client's own text, of any length. */
export const MAX_SHOWN_TEXT_LENGTH = 200;

/** A 400 that names the offending fields, with the path a client would use (`attributes[0].key`). */
export class RequestValidationError extends GatewayError {
  /** `fieldErrors`: every offending field; the answer shows the first MAX_SHOWN_FIELD_ERRORS. */
  constructor(readonly fieldErrors: FieldError[]) {
    // Field errors reach the filter the one way every GatewayError's do: in details.
    const shown = shownFieldErrors(fieldErrors);
    super(400, shownMessage(shown, fieldErrors.length - shown.length), {
      fieldErrors: shown,
      ...(fieldErrors.length > shown.length && { moreFieldErrors: fieldErrors.length - shown.length }),
    });
  }

  /** The fields named vary with each body; the kind does not. */
  override get refusalReason(): string {
    return 'invalid request body';
  }

  static fromValidationErrors(errors: ValidationError[]): RequestValidationError {
    return new RequestValidationError(flatten(errors, ''));
  }
}

function shownFieldErrors(fieldErrors: FieldError[]): FieldError[] {
  return fieldErrors
    .slice(0, MAX_SHOWN_FIELD_ERRORS)
    .map(({ field, reason }) => ({ field: shortened(field), reason: shortened(reason) }));
}

/** `field: reason` of each shown field, joined by "; ", then how many more there were. */
function shownMessage(shown: FieldError[], more: number): string {
  const listed = shown.map(({ field, reason }) => `${field}: ${reason}`).join('; ');
  return more > 0 ? `${listed}; … and ${more} more` : listed;
}

function shortened(text: string): string {
  return text.length > MAX_SHOWN_TEXT_LENGTH ? `${text.slice(0, MAX_SHOWN_TEXT_LENGTH)}…` : text;
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
