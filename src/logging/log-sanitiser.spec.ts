import { describe, expect, it } from '@jest/globals';
import { LogSanitiser, REDACTED } from './log-sanitiser.js';

const SECRET = 'SENTINEL-server-secret-0123456789abcdef';

describe('LogSanitiser.sanitise', () => {
  const sanitiser = new LogSanitiser(() => [SECRET]);

  it('removes the secret wherever it occurs', () => {
    expect(sanitiser.sanitise(`a ${SECRET} b ${SECRET}`)).toBe(`a ${REDACTED} b ${REDACTED}`);
  });

  it('censors Signature and SignatureNonce query parameters, keeping the other parameters', () => {
    const url =
      'POST https://zim-api.zego.im/?Action=CreateRoom&AppId=1&SignatureNonce=1a2b3c4d5e6f7a8b&Timestamp=1700000000&Signature=0123abcd0123abcd0123abcd0123abcd&SignatureVersion=2.0';
    const clean = sanitiser.sanitise(url);
    expect(clean).not.toMatch(/1a2b3c4d5e6f7a8b|0123abcd0123abcd/);
    expect(clean).toContain(`Signature=${REDACTED}`);
    expect(clean).toContain(`SignatureNonce=${REDACTED}`);
    expect(clean).toContain('Action=CreateRoom');
    expect(clean).toContain('SignatureVersion=2.0');
    expect(clean).toContain('Timestamp=1700000000');
  });

  it('censors signature values quoted as JSON (an axios error config)', () => {
    const text = '{"params":{"Signature":"deadbeefdeadbeef","SignatureNonce":"cafe"},"AppId":1}';
    const clean = sanitiser.sanitise(text);
    expect(clean).not.toMatch(/deadbeef|cafe/);
    expect(clean).toContain('"AppId":1');
  });

  it('censors a signature inside a stack trace', () => {
    const stack = `Error: request to /?Signature=feedface01&Action=x failed\n    at send (file:///app/dist/zego/zim-client.js:10:5)`;
    const clean = sanitiser.sanitise(stack);
    expect(clean).not.toContain('feedface01');
    expect(clean).toContain('zim-client.js:10:5');
  });

  it.each([
    ['redis://user:s3cr3t-pass@redis:6379/0', 'redis://user:***@redis:6379/0'],
    ['rediss://default:p%40ss@cache.internal:6380', 'rediss://default:***@cache.internal:6380'],
    ['redis://:only-a-password@127.0.0.1:6379', 'redis://:***@127.0.0.1:6379'],
    ['connecting to redis://127.0.0.1:6379 now', 'connecting to redis://127.0.0.1:6379 now'],
  ])('censors the password of %s', (raw, expected) => {
    expect(sanitiser.sanitise(raw)).toBe(expected);
  });

  it('censors bearer tokens and Authorization header text', () => {
    expect(sanitiser.sanitise('Authorization: Bearer sk-live-abc123')).not.toContain('sk-live-abc123');
    expect(sanitiser.sanitise('sent Bearer sk-live-abc123 to x')).toBe(`sent Bearer ${REDACTED} to x`);
    expect(sanitiser.sanitise('{"authorization":"Basic dXNlcjpwYXNz"}')).not.toContain('dXNlcjpwYXNz');
  });

  it('censors secret-looking assignments (environment dumps, query strings)', () => {
    const clean = sanitiser.sanitise('ZEGO_SERVER_SECRET=abcdef123456 REDIS_PASSWORD=hunter22 api_key=k-1 x=1');
    expect(clean).not.toMatch(/abcdef123456|hunter22|k-1/);
    expect(clean).toContain('x=1');
  });

  it('leaves ordinary text alone', () => {
    const text = 'POST /rooms 201 12.5 ms: vendor rejected our signature (code 100000004)';
    expect(sanitiser.sanitise(text)).toBe(text);
  });

  it('keeps censoring a rotated-out secret, and picks up the new one from its source', () => {
    let current = 'first-secret-value-aaaa';
    const rotating = new LogSanitiser(() => [current]);
    expect(rotating.sanitise('x first-secret-value-aaaa')).toBe(`x ${REDACTED}`);
    current = 'second-secret-value-bbbb';
    expect(rotating.sanitise('second-secret-value-bbbb first-secret-value-aaaa')).toBe(`${REDACTED} ${REDACTED}`);
  });

  it('accepts more sources and values later, and ignores too-short literals', () => {
    const later = new LogSanitiser();
    later.addSecretSource(() => ['from-a-source-1234']);
    later.addSecretSource(() => ['added-by-hand-5678', 'abc']);
    expect(later.sanitise('from-a-source-1234 added-by-hand-5678 abc')).toBe(`${REDACTED} ${REDACTED} abc`);
  });

  it('survives a throwing source', () => {
    const broken = new LogSanitiser(() => {
      throw new Error('not ready');
    });
    expect(broken.sanitise('hello')).toBe('hello');
  });
});

describe('LogSanitiser.sanitiseValue', () => {
  const sanitiser = new LogSanitiser(() => [SECRET]);

  it('censors sensitive keys at any depth and in any case, and sanitises every string', () => {
    const value = {
      headers: { Authorization: 'Bearer abc', 'x-request-id': 'r1' },
      config: { params: { Signature: 'sig', Action: 'CreateRoom' }, data: { nested: [`has ${SECRET}`] } },
      password: 'p',
      keep: 1,
    };
    expect(sanitiser.sanitiseValue(value)).toEqual({
      headers: { Authorization: REDACTED, 'x-request-id': 'r1' },
      config: { params: { Signature: REDACTED, Action: 'CreateRoom' }, data: { nested: [`has ${REDACTED}`] } },
      password: REDACTED,
      keep: 1,
    });
  });

  it('does not change the object it was given, and keeps Errors for the serializer', () => {
    const error = new Error('x');
    const value = { secret: 's', err: error };
    const copy = sanitiser.sanitiseValue(value) as Record<string, unknown>;
    expect(value.secret).toBe('s');
    expect(copy.err).toBe(error);
  });

  it('stops at a fixed depth', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 50; i++) deep = { a: deep };
    expect(JSON.stringify(sanitiser.sanitiseValue(deep))).toContain('[too deep]');
  });
});
