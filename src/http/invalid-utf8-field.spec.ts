import { isUtf8 } from 'node:buffer';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { firstInvalidUtf8Offset, invalidUtf8Field } from './invalid-utf8-field.js';
import { parseJsonBody } from './json-body-reader.js';

const bytes = (...parts: Array<string | number[]>): Buffer =>
  Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'utf8') : Buffer.from(part))));


describe('firstInvalidUtf8Offset', () => {
  it.each([
    ['a lead byte followed by ASCII', [0xc3, 0x28], 0],
    ['a lone continuation byte', [0x80], 0],
    ['0xFF', [0xff], 0],
    ['a sequence cut short at the end', [0xe2, 0x82], 0],
    ['an overlong "/"', [0xc0, 0xaf], 0],
    ['an overlong three-byte form', [0xe0, 0x80, 0xaf], 0],
    ['a UTF-16 surrogate', [0xed, 0xa0, 0x80], 0],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80], 0],
  ])('finds %s at its start', (_name, sequence, offset) => {
    expect(firstInvalidUtf8Offset(bytes('ok é 中 😀 ', sequence))).toBe(Buffer.byteLength('ok é 中 😀 ') + offset);
  });

  it('is -1 for valid text, a valid U+FFFD included', () => {
    expect(firstInvalidUtf8Offset(bytes('{"roomName":"é中😀\uFFFD"}'))).toBe(-1);
    expect(firstInvalidUtf8Offset(new Uint8Array())).toBe(-1);
  });

  it('agrees with buffer.isUtf8 on any bytes, and points at bytes whose prefix is valid', () => {
    const byteArrays = fc.oneof(
      fc.uint8Array({ maxLength: 24 }),
      // Mostly valid text with a few random bytes spliced in: the interesting neighbourhood.
      fc
        .tuple(fc.string({ unit: 'grapheme', maxLength: 8 }), fc.uint8Array({ maxLength: 4 }), fc.string({ maxLength: 8 }))
        .map(([before, noise, after]) => new Uint8Array(bytes(before, [...noise], after))),
    );
    fc.assert(
      fc.property(byteArrays, (sample) => {
        const offset = firstInvalidUtf8Offset(sample);
        expect(offset === -1).toBe(isUtf8(sample));
        if (offset !== -1) expect(isUtf8(sample.subarray(0, offset))).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('invalidUtf8Field', () => {
  const name = (raw: Buffer): string => invalidUtf8Field(raw, parseJsonBody(raw));

  it('names the string value that held the bytes', () => {
    expect(name(bytes('{"roomId":"r1","roomName":"a', [0xc3, 0x28, 0xff], '"}'))).toBe('roomName');
    expect(name(bytes('{"roomId":"r1","attributes":[{"key":"', [0xff], '","value":"v"}]}'))).toBe('attributes[0].key');
    expect(name(bytes('{"rooms":[{"roomId":"a"},{"roomId":"b","roomName":"', [0xed, 0xa0, 0x80], '"}]}'))).toBe('rooms[1].roomName');
  });

  it('names the key that held the bytes, by its path', () => {
    expect(name(bytes('{"roomId":"r1","attributes":[{"k', [0xff], '":"v"}]}'))).toBe('attributes[0].k\uFFFD');
  });

  it('is not misled by a valid U+FFFD elsewhere in the body', () => {
    expect(name(bytes('{"roomName":"\uFFFD","roomId":"r', [0xff], '"}'))).toBe('roomId');
    expect(name(bytes('{"a":"\uFFFD","b":"', [0xff], '","c":"\uFFFD"}'))).toBe('b');
  });

  it('names the first of several, and `body` when there is no field to name', () => {
    expect(name(bytes('{"roomId":"', [0xff], '","roomName":"', [0xff], '"}'))).toBe('roomId');
    expect(invalidUtf8Field(bytes('"', [0xff], '"'), '\uFFFD')).toBe('body');
    expect(invalidUtf8Field(bytes('{"roomId":"r1"}'), { roomId: 'r1' })).toBe('body');
  });

  it('names the field of any string of a generated body that gets one invalid byte', () => {
    const body = fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), fc.stringMatching(/^[a-z0-9 é中]{0,6}$/), { minKeys: 1, maxKeys: 6 });
    const invalidByte = fc.constantFrom(0x80, 0xbf, 0xc3, 0xe2, 0xed, 0xf4, 0xf5, 0xff);
    fc.assert(
      fc.property(body, fc.nat(), fc.nat(), invalidByte, (fields, pick, at, invalid) => {
        const keys = Object.keys(fields);
        const key = keys[pick % keys.length]!;
        const value = fields[key]!;
        const cut = at % (value.length + 1);
        // '#' appears nowhere else in the JSON text: it marks where the invalid byte goes.
        const [before, after] = JSON.stringify({ ...fields, [key]: `${value.slice(0, cut)}#${value.slice(cut)}` }).split('#') as [string, string];
        expect(name(bytes(before, [invalid], after))).toBe(key);
      }),
      { numRuns: 500 },
    );
  });
});
