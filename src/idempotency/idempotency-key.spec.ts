import { describe, expect, it } from '@jest/globals';
import { RequestValidationError } from '../http/request-validation.error.js';
import {
  bodyFingerprint,
  canonicalJson,
  readIdempotencyKey,
} from './idempotency-key.js';

describe('readIdempotencyKey', () => {
  it('is undefined without the header', () => {
    expect(readIdempotencyKey(undefined)).toBeUndefined();
  });

  it.each(['a', 'x'.repeat(255), 'order-42:create', '!~"#{}[]\\/', '550e8400-e29b-41d4-a716-446655440000'])(
    'accepts %j',
    (key) => {
      expect(readIdempotencyKey(key)).toBe(key);
    },
  );

  it.each([
    ['empty', ''],
    ['too long', 'x'.repeat(256)],
    ['with a space', 'a b'],
    ['two headers joined by Node', 'a, b'],
    ['with a tab', 'a\tb'],
    ['non-ASCII', 'clé'],
    ['a control character', 'a\u0001'],
  ])('refuses a key %s with a 400 naming the header', (_, key) => {
    let error: unknown;
    try {
      readIdempotencyKey(key);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(RequestValidationError);
    expect((error as RequestValidationError).status).toBe(400);
    expect((error as RequestValidationError).fieldErrors).toEqual([
      { field: 'Idempotency-Key', reason: expect.stringContaining('1-255 printable ASCII') },
    ]);
  });

  it('refuses an array of values (a header given twice, as some servers pass it)', () => {
    expect(() => readIdempotencyKey(['a', 'b'])).toThrow(RequestValidationError);
  });
});

describe('canonicalJson and bodyFingerprint', () => {
  it('sorts keys at every depth and leaves undefined members out', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ y: 1, x: 2 }], c: undefined } })).toBe('{"a":{"d":[{"x":2,"y":1}]},"b":1}');
  });

  it('gives the same fingerprint for the same body in any key order, another for any other body', () => {
    const one = { roomId: 'r1', roomName: 'n', attributes: [{ key: 'k', value: 'v', autoDelete: true }] };
    const same = { attributes: [{ autoDelete: true, value: 'v', key: 'k' }], roomName: 'n', roomId: 'r1' };
    expect(bodyFingerprint(one)).toBe(bodyFingerprint(same));
    expect(bodyFingerprint(one)).toMatch(/^[0-9a-f]{64}$/);
    expect(bodyFingerprint({ ...one, roomName: 'm' })).not.toBe(bodyFingerprint(one));
    expect(bodyFingerprint({ ...one, attributes: [] })).not.toBe(bodyFingerprint(one));
    // Attribute order is part of the request.
    const two = { roomId: 'r', attributes: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }] };
    expect(bodyFingerprint({ ...two, attributes: [...two.attributes].reverse() })).not.toBe(bodyFingerprint(two));
  });

  it('treats a class instance like the plain object it holds (validated DTOs)', () => {
    class Dto {
      roomId = 'r1';
      roomName?: string = undefined;
    }
    expect(bodyFingerprint(new Dto())).toBe(bodyFingerprint({ roomId: 'r1' }));
  });
});
