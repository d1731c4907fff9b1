import { describe, expect, it } from '@jest/globals';
import type { ErrorBody } from './error-body.js';
import { ErrorBodyWriter } from './error-body-writer.js';

describe('ErrorBodyWriter', () => {
  const plain = (statusCode: number, message: string, requestId: string): ErrorBody => ({
    statusCode,
    error: statusCode === 401 ? 'Unauthorized' : 'Too Many Requests',
    message,
    requestId,
  });

  it('serialises a plain body as JSON.stringify would, from a prepared head', () => {
    const writer = new ErrorBodyWriter();
    for (const body of [
      plain(401, 'Unknown API key', 'a'),
      plain(401, 'Unknown API key', 'b-"quoted"\\'),
      plain(429, 'Client quota "x" exceeded', 'c'),
      plain(401, 'Unknown API key', 'd'),
    ]) {
      expect(writer.serialise(body)).toBe(JSON.stringify(body));
      expect(JSON.parse(writer.serialise(body))).toEqual(body);
    }
  });

  it('serialises field errors, with or without more, and the same list again, as JSON.stringify would', () => {
    const writer = new ErrorBodyWriter();
    const errors = [{ field: 'roomId', reason: 'must be a "string"' }];
    const bodies: ErrorBody[] = [
      { statusCode: 400, error: 'Bad Request', message: 'roomId: …', requestId: 'a', errors, moreErrors: 2 },
      { statusCode: 400, error: 'Bad Request', message: 'roomId: …', requestId: 'b', errors, moreErrors: 2 },
      { statusCode: 400, error: 'Bad Request', message: 'roomId: …', requestId: 'c', errors },
      { statusCode: 400, error: 'Bad Request', message: 'roomId: …', requestId: 'd', errors: [{ field: 'x', reason: 'y' }] },
    ];
    for (const body of bodies) expect(writer.serialise(body)).toBe(JSON.stringify(body));
  });

  it('serialises any other body in full (the vendor code of a 502)', () => {
    const body: ErrorBody = { statusCode: 502, error: 'Bad Gateway', message: 'x', requestId: 'id', zegoCode: 5, zegoRequestId: 'z' };
    expect(new ErrorBodyWriter().serialise(body)).toBe(JSON.stringify(body));
  });

  it('keeps its prepared heads bounded, and right after it drops them', () => {
    const writer = new ErrorBodyWriter();
    for (let i = 0; i < 1000; i++) {
      const body = plain(429, `message ${i}`, `r${i}`);
      expect(writer.serialise(body)).toBe(JSON.stringify(body));
    }
    expect((writer as unknown as { heads: Map<string, string> }).heads.size).toBeLessThanOrEqual(256);
  });
});
