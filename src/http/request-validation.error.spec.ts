import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { plainToInstance, Type } from 'class-transformer';
import { IsInt, IsString, MinLength, ValidateNested, validate, type ValidationError } from 'class-validator';
import type { FieldError } from './error-body.js';
import { GatewayError } from './gateway-error.js';
import { MAX_SHOWN_FIELD_ERRORS, MAX_SHOWN_TEXT_LENGTH, RequestValidationError } from './request-validation.error.js';

function error(property: string, constraints?: Record<string, string>, children: ValidationError[] = []): ValidationError {
  return { property, constraints, children } as ValidationError;
}

describe('RequestValidationError', () => {
  it('is a 400 GatewayError listing every field and reason in its message', () => {
    const e = new RequestValidationError([
      { field: 'roomId', reason: 'is bad' },
      { field: 'attributes[0].key', reason: 'is too long' },
    ]);
    expect(e).toBeInstanceOf(GatewayError);
    expect(e.status).toBe(400);
    expect(e.name).toBe('RequestValidationError');
    expect(e.message).toBe('roomId: is bad; attributes[0].key: is too long');
    expect(e.publicMessage).toBe(e.message);
  });

  describe('fromValidationErrors', () => {
    it('flattens nested array items and their properties as attributes[0].key', () => {
      const e = RequestValidationError.fromValidationErrors([
        error('attributes', undefined, [
          error('0', undefined, [error('key', { isString: 'must be a string' })]),
          error('12', { nestedValidation: 'must be an object' }),
        ]),
      ]);
      expect(e.fieldErrors).toEqual([
        { field: 'attributes[0].key', reason: 'must be a string' },
        { field: 'attributes[12]', reason: 'must be an object' },
      ]);
    });

    it('joins nested objects with dots and nested arrays with brackets', () => {
      const e = RequestValidationError.fromValidationErrors([
        error('owner', undefined, [error('address', undefined, [error('zip', { a: 'bad zip' })])]),
        error('matrix', undefined, [error('1', undefined, [error('2', { b: 'not a number' })])]),
      ]);
      expect(e.fieldErrors.map((f) => f.field)).toEqual(['owner.address.zip', 'matrix[1][2]']);
    });

    it('keeps a parent error and its children, in that order, one entry per constraint', () => {
      const e = RequestValidationError.fromValidationErrors([
        error('attributes', { max: 'too many', unique: 'repeats a key' }, [
          error('3', undefined, [error('value', { len: 'too long' })]),
        ]),
        error('roomName', { len: 'too long' }),
      ]);
      expect(e.fieldErrors).toEqual([
        { field: 'attributes', reason: 'too many' },
        { field: 'attributes', reason: 'repeats a key' },
        { field: 'attributes[3].value', reason: 'too long' },
        { field: 'roomName', reason: 'too long' },
      ]);
    });

    it('names an empty key "" so that the client can find it, at the top and nested', () => {
      const e = RequestValidationError.fromValidationErrors([
        error('', { whitelistValidation: 'property  should not exist' }),
        error('attributes', {}, [error('0', {}, [error('', { whitelistValidation: 'unknown' })])]),
      ]);
      expect(e.fieldErrors.map((f) => f.field)).toEqual(['""', 'attributes[0][""]']);
    });

    it('does not take a digit-only top-level property for an index', () => {
      const e = RequestValidationError.fromValidationErrors([error('0', { c: 'bad' })]);
      expect(e.fieldErrors).toEqual([{ field: '0', reason: 'bad' }]);
    });

    it('does not take a property that merely contains digits for an index', () => {
      const e = RequestValidationError.fromValidationErrors([
        error('list', undefined, [error('1a', { c: 'bad' }), error('a1', { c: 'bad' })]),
      ]);
      expect(e.fieldErrors.map((f) => f.field)).toEqual(['list.1a', 'list.a1']);
    });

    it('flattens the errors class-validator really produces', async () => {
      class Item {
        @IsString()
        @MinLength(2)
        key!: string;
      }
      class Holder {
        @IsInt()
        count!: number;

        @ValidateNested({ each: true })
        @Type(() => Item)
        items!: Item[];
      }
      const holder = plainToInstance(Holder, { count: 'x', items: [{ key: 'ok' }, { key: 'k' }, { key: 5 }] });
      const e = RequestValidationError.fromValidationErrors(await validate(holder));
      expect([...new Set(e.fieldErrors.map((f) => f.field))].sort()).toEqual(
        ['count', 'items[1].key', 'items[2].key'].sort(),
      );
    });
  });
});

describe('RequestValidationError: a bounded answer', () => {
  const errors = (count: number): FieldError[] => Array.from({ length: count }, (_, i) => ({ field: `k${i}`, reason: 'is unknown' }));

  it(`shows every field up to ${MAX_SHOWN_FIELD_ERRORS}`, () => {
    const e = new RequestValidationError(errors(MAX_SHOWN_FIELD_ERRORS));
    expect(e.details.fieldErrors).toHaveLength(MAX_SHOWN_FIELD_ERRORS);
    expect(e.message).not.toContain('more');
  });

  it(`shows the first ${MAX_SHOWN_FIELD_ERRORS} of more, and says how many more in the message; keeps them all for the pipe`, () => {
    const e = new RequestValidationError(errors(8_291));
    expect(e.details.fieldErrors).toEqual(errors(MAX_SHOWN_FIELD_ERRORS));
    expect(e.message).toMatch(/^k0: is unknown; k1: is unknown; .*; k19: is unknown; … and 8271 more$/);
    expect(e.message.split('; ')).toHaveLength(MAX_SHOWN_FIELD_ERRORS + 1);
    expect(e.fieldErrors).toHaveLength(8_291);
  });

  it('shortens a field or reason longer than the limit: a key is the client’s text', () => {
    const key = 'k'.repeat(60_000);
    const e = new RequestValidationError([{ field: key, reason: `property ${key} should not exist` }]);
    const [shown] = e.details.fieldErrors!;
    expect(shown!.field).toBe(`${'k'.repeat(MAX_SHOWN_TEXT_LENGTH)}…`);
    expect(shown!.reason).toHaveLength(MAX_SHOWN_TEXT_LENGTH + 1);
    expect(e.message.length).toBeLessThan(2 * MAX_SHOWN_TEXT_LENGTH + 10);
  });
});
