import { ValidateIf } from 'class-validator';

/**
 * The field may be left out, but if present it must be valid: unlike @IsOptional, `null` is not
 * taken for "absent", so a client's null is reported instead of silently dropped.
 */
export function OptionalField(): PropertyDecorator {
  return ValidateIf((_object: object, value: unknown) => value !== undefined);
}
