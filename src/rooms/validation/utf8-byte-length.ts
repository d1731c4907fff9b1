import { registerDecorator, type ValidationOptions } from 'class-validator';

/**
 * The vendor counts room names and attributes in UTF-8 bytes, not characters: "é" is 2 bytes and
 * "会" 3. Lone surrogates are refused, since they have no UTF-8 encoding at all.
 */
export function Utf8ByteLength(min: number, max: number, options?: ValidationOptions) {
  return (target: object, propertyName: string): void => {
    registerDecorator({
      name: 'utf8ByteLength',
      target: target.constructor,
      propertyName,
      constraints: [min, max],
      options,
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' && value.isWellFormed() && withinBytes(value, min, max),
        defaultMessage: () =>
          min === 0
            ? `must be valid text of at most ${max} UTF-8 bytes`
            : `must be valid text of ${min} to ${max} UTF-8 bytes`,
      },
    });
  };
}

export function utf8Bytes(value: string): number {
  return Buffer.byteLength(value, 'utf8');
}

function withinBytes(value: string, min: number, max: number): boolean {
  const bytes = utf8Bytes(value);
  return bytes >= min && bytes <= max;
}
