import { describe, expect, it } from '@jest/globals';
import type { LogLevel } from './logging.settings.js';
import { createLogger } from './create-logger.js';
import { REDACTED } from './log-sanitiser.js';
import { splitParams } from './pino-logger.js';
import { loggingConfig, MemoryDestination } from '../../test/support/memory-log-destination.js';

const SECRET = 'SENTINEL-logger-secret-9f8e7d6c5b4a';

function setUp(level: LogLevel = 'trace') {
  const destination = new MemoryDestination();
  const logger = createLogger(loggingConfig(level, SECRET), { destination });
  return { logger, destination };
}

describe('PinoLogger line format', () => {
  it('writes one JSON object per line: level label, message, timestamp, pid, context', () => {
    const { logger, destination } = setUp('info');
    const before = Date.now();
    logger.log('zim-room-gateway listening on port 3000', 'Bootstrap');
    expect(destination.raw).toHaveLength(1);
    expect(destination.raw[0]!.endsWith('\n')).toBe(true);
    const [line] = destination.lines;
    expect(line).toEqual({
      level: 'info',
      timestamp: expect.any(Number),
      pid: process.pid,
      context: 'Bootstrap',
      message: 'zim-room-gateway listening on port 3000',
    });
    expect(line!.timestamp as number).toBeGreaterThanOrEqual(before);
  });

  it('maps Nest levels onto pino levels (log→info, verbose→trace)', () => {
    const { logger, destination } = setUp('trace');
    logger.log('a');
    logger.error('b');
    logger.warn('c');
    logger.debug('d');
    logger.verbose('e');
    logger.fatal('f');
    expect(destination.lines.map((l) => [l.message, l.level])).toEqual([
      ['a', 'info'],
      ['b', 'error'],
      ['c', 'warn'],
      ['d', 'debug'],
      ['e', 'trace'],
      ['f', 'fatal'],
    ]);
  });

  it.each<[LogLevel, string[]]>([
    ['fatal', ['fatal']],
    ['error', ['fatal', 'error']],
    ['warn', ['fatal', 'error', 'warn']],
    ['info', ['fatal', 'error', 'warn', 'info']],
    ['debug', ['fatal', 'error', 'warn', 'info', 'debug']],
    ['trace', ['fatal', 'error', 'warn', 'info', 'debug', 'trace']],
  ])('LOG_LEVEL=%s writes %j', (level, written) => {
    const { logger, destination } = setUp(level);
    logger.fatal('x');
    logger.error('x');
    logger.warn('x');
    logger.log('x');
    logger.debug('x');
    logger.verbose('x');
    expect(destination.lines.map((l) => l.level)).toEqual(written);
  });

  it('setLogLevels takes the least severe level listed', () => {
    const { logger, destination } = setUp('info');
    logger.setLogLevels(['error', 'warn']);
    logger.log('hidden');
    logger.warn('shown');
    logger.setLogLevels(['log', 'verbose']);
    logger.verbose('shown too');
    expect(destination.lines.map((l) => l.message)).toEqual(['shown', 'shown too']);
  });
});

describe('PinoLogger parameters (Nest convention)', () => {
  const STACK = 'Error: boom\n    at run (file:///app/dist/x.js:1:2)';

  it('reads a trailing string as the context, and for errors the one before it as the stack', () => {
    const { logger, destination } = setUp();
    logger.error('failed', STACK, 'Ctx'); // new Logger('Ctx').error('failed', stack)
    logger.error('failed', undefined, 'Ctx'); // new Logger('Ctx').error('failed')
    logger.error('failed', STACK); // Logger.error('failed', stack), no context
    logger.error('failed', 'Ctx'); // Logger.error('failed', 'Ctx')
    logger.warn('careful', 'Ctx');
    const lines = destination.lines;
    expect(lines[0]).toEqual(expect.objectContaining({ context: 'Ctx', stack: STACK, message: 'failed' }));
    expect(lines[1]).toEqual(expect.objectContaining({ context: 'Ctx', message: 'failed' }));
    expect(lines[1]).not.toHaveProperty('stack');
    expect(lines[2]).toEqual(expect.objectContaining({ stack: STACK }));
    expect(lines[2]).not.toHaveProperty('context');
    expect(lines[3]).toEqual(expect.objectContaining({ context: 'Ctx' }));
    expect(lines[3]).not.toHaveProperty('stack');
    expect(lines[4]).toEqual(expect.objectContaining({ context: 'Ctx', message: 'careful', level: 'warn' }));
  });

  it('splitParams follows ConsoleLogger for the ambiguous cases', () => {
    expect(splitParams([], true)).toEqual({ extras: [] });
    expect(splitParams([undefined], true)).toEqual({ stack: undefined, extras: [] });
    expect(splitParams(['plain text', 'Ctx'], true)).toEqual({ context: 'Ctx', stack: 'plain text', extras: [] });
    expect(splitParams([{ a: 1 }, 'Ctx'], false)).toEqual({ context: 'Ctx', extras: [{ a: 1 }] });
  });

  it('logs an Error with its type, message and stack, all sanitised', () => {
    const { logger, destination } = setUp();
    const error = new Error(`GET /?Signature=abcdef0123456789 failed with ${SECRET}`);
    logger.error(error, undefined, 'ZimClient');
    const [line] = destination.lines;
    expect(line!.level).toBe('error');
    expect(line!.context).toBe('ZimClient');
    const err = line!.err as { type: string; message: string; stack: string };
    expect(err.type).toBe('Error');
    expect(err.stack).toMatch(/pino-logger\.spec/);
    expect(destination.text).not.toContain(SECRET);
    expect(destination.text).not.toContain('abcdef0123456789');
    expect(err.message).toContain(`Signature=${REDACTED}`);
  });

  it('sanitises messages, stacks and extra objects', () => {
    const { logger, destination } = setUp();
    logger.error(
      `Redis redis://app:hunter2-pw@redis:6379 refused; secret ${SECRET}`,
      `Error: x?SignatureNonce=nonce-9999&Signature=sig-8888\n    at f (file:///a.js:1:1)`,
      'Redis',
    );
    logger.log('headers', { headers: { authorization: 'Bearer sk-key-7777' }, requestId: 'r-1' }, 'Ctx');
    logger.warn({ apiKey: 'sk-key-6666', note: 'object message' });
    const text = destination.text;
    for (const leaked of ['hunter2-pw', SECRET, 'nonce-9999', 'sig-8888', 'sk-key-7777', 'sk-key-6666']) {
      expect(text).not.toContain(leaked);
    }
    const [first, second, third] = destination.lines;
    expect(first!.message).toBe(`Redis redis://app:***@redis:6379 refused; secret ${REDACTED}`);
    expect(second!.params).toEqual({ headers: { authorization: REDACTED }, requestId: 'r-1' });
    expect(third!.message).toContain('object message');
  });

  it('censors pino redact paths when the pino instance is used directly', () => {
    const { logger, destination } = setUp();
    logger.pino.info(
      { req: { headers: { authorization: 'Bearer sk-direct-1' }, body: { roomId: 'r', secret: 'x' } }, body: 'raw body' },
      'direct',
    );
    const [line] = destination.lines;
    expect(destination.text).not.toContain('sk-direct-1');
    expect(line!.body).toBe(REDACTED);
    expect((line!.req as { body: unknown }).body).toBe(REDACTED);
  });

  it('censors a rotated ServerSecret once a source hands it out', () => {
    const { logger, destination } = setUp();
    let current = 'rotated-secret-value-1234';
    logger.sanitiser.addSecretSource(() => [current]);
    logger.log('uses rotated-secret-value-1234');
    current = 'rotated-secret-value-5678';
    logger.log(`uses rotated-secret-value-5678 and rotated-secret-value-1234 and ${SECRET}`);
    expect(destination.lines.map((l) => l.message)).toEqual([
      `uses ${REDACTED}`,
      `uses ${REDACTED} and ${REDACTED} and ${REDACTED}`,
    ]);
  });

  it('gives the same configuration the same logger (Nest and the request log share one instance)', () => {
    const config = loggingConfig('info', SECRET);
    expect(createLogger(config)).toBe(createLogger(config));
  });
});

describe('PinoLogger error causes', () => {
  it('sanitises the cause chain of a logged Error', () => {
    const { logger, destination } = setUp();
    const cause = new Error(`connect redis://u:cause-pw-1@r:6379 with ${SECRET}`);
    logger.error(new Error('outer', { cause }));
    expect(destination.text).not.toContain('cause-pw-1');
    expect(destination.text).not.toContain(SECRET);
  });
});

describe('PinoLogger.notice', () => {
  it('writes an info line even when LOG_LEVEL is above info', () => {
    const { logger, destination } = setUp('error');
    logger.log('hidden');
    logger.notice('zim-room-gateway listening on port 3000', 'Bootstrap');
    expect(destination.lines).toEqual([
      expect.objectContaining({ level: 'info', context: 'Bootstrap', message: 'zim-room-gateway listening on port 3000' }),
    ]);
  });
});
