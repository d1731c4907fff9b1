import { describe, expect, it } from '@jest/globals';
import { jsonBodyBoundsBreach, MAX_KEYS_PER_OBJECT, MAX_NESTING_DEPTH } from './json-body-bounds.js';

const PLENTY = 1_000_000;

/** An object with `count` keys `k0`, `k1`, … each holding `value`. */
function wide(count: number, value: unknown = 0): Record<string, unknown> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, value]));
}

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

describe('jsonBodyBoundsBreach', () => {
  it('accepts a realistic room body, and scalars (nothing to count)', () => {
    const body = { roomId: 'r', roomName: 'n', attributes: [{ key: 'k', value: 'v', autoDelete: true }] };
    expect(jsonBodyBoundsBreach(body, 170)).toBeUndefined();
    expect(jsonBodyBoundsBreach('text', 0)).toBeUndefined();
  });

  it(`accepts ${MAX_KEYS_PER_OBJECT} keys in an object and refuses one more, naming the object`, () => {
    expect(jsonBodyBoundsBreach(wide(MAX_KEYS_PER_OBJECT), PLENTY)).toBeUndefined();
    expect(jsonBodyBoundsBreach(wide(MAX_KEYS_PER_OBJECT + 1), PLENTY)).toEqual({
      field: 'body',
      reason: `must not have more than ${MAX_KEYS_PER_OBJECT} keys`,
    });
    const inAttribute = { roomId: 'r', attributes: [{ key: 'k' }, wide(8_000)] };
    expect(jsonBodyBoundsBreach(inAttribute, PLENTY)?.field).toBe('attributes[1]');
    const inBatch = { rooms: [{ roomId: 'a' }, { roomId: 'b', attributes: [wide(40)] }] };
    expect(jsonBodyBoundsBreach(inBatch, PLENTY)?.field).toBe('rooms[1].attributes[0]');
    expect(jsonBodyBoundsBreach({ '': { 7: wide(40) } }, PLENTY)?.field).toBe('""[7]');
  });

  it('counts object keys and array items together against the total, at the limit and one past', () => {
    // 2 keys + 3 items + 3 x 1 key = 8
    const body = { roomId: 'r', attributes: [{ key: 'a' }, { key: 'b' }, { key: 'c' }] };
    expect(jsonBodyBoundsBreach(body, 8)).toBeUndefined();
    expect(jsonBodyBoundsBreach(body, 7)).toEqual({ field: 'body', reason: 'must not have more than 7 keys and array items in all' });
    expect(jsonBodyBoundsBreach({ list: Array.from({ length: 50_000 }, () => 0) }, 170)?.field).toBe('body');
    expect(jsonBodyBoundsBreach({ rooms: Array.from({ length: 25_000 }, () => ({ a: 0 })) }, 8_604)?.field).toBe('body');
  });

  it('refuses nesting past the limit, naming the body, and measures a body far deeper than the stack allows', () => {
    expect(jsonBodyBoundsBreach({ x: nested(MAX_NESTING_DEPTH - 1) }, PLENTY)).toBeUndefined();
    expect(jsonBodyBoundsBreach({ x: nested(MAX_NESTING_DEPTH) }, PLENTY)).toEqual({
      field: 'body',
      reason: `must not nest deeper than ${MAX_NESTING_DEPTH} levels`,
    });
    expect(jsonBodyBoundsBreach({ x: nested(100_000) }, PLENTY)?.field).toBe('body');
  });

  it('stops at the first bound passed: a wide object is read no further than one key past the limit', () => {
    let valuesRead = 0;
    const counted: Record<string, unknown> = {};
    for (let i = 0; i < 10_000; i++) {
      Object.defineProperty(counted, `k${i}`, {
        enumerable: true,
        get: () => {
          valuesRead++;
          return {};
        },
      });
    }
    expect(jsonBodyBoundsBreach({ wide: counted }, PLENTY)?.field).toBe('wide');
    expect(valuesRead).toBeLessThanOrEqual(MAX_KEYS_PER_OBJECT);
  });

  it('stops at the first bound passed: a long array over the total is refused without reading one item', () => {
    let itemsRead = 0;
    const list = new Proxy(Array.from({ length: 100_000 }, () => ({})), {
      get(target, property, receiver) {
        if (typeof property === 'string' && /^\d+$/.test(property)) itemsRead++;
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    expect(jsonBodyBoundsBreach({ list }, 1_000)?.field).toBe('body');
    expect(itemsRead).toBe(0);
  });
});
