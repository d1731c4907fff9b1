import { EventEmitter } from 'node:events';
import { describe, expect, it } from '@jest/globals';
import type { NextFunction, Response } from 'express';
import { RequestProgress, runWithRequestProgress } from '../http/request-progress.js';
import { ZimCallEvents } from '../zego/zim-call-events.js';
import { createLogger } from './create-logger.js';
import { RequestContextRecorder, requestContext } from './request-context.js';
import { RefusalLog } from './refusal-log.js';
import { pathOf, RequestLogMiddleware, requestLogLevel, roomIdOf } from './request-log.middleware.js';
import { loggingConfig, MemoryDestination } from '../../test/support/memory-log-destination.js';

describe('requestLogLevel', () => {
  it.each([
    ['POST', '/rooms', 201, 'info'],
    ['POST', '/rooms', 302, 'info'],
    ['POST', '/rooms', 400, 'warn'],
    ['POST', '/rooms', 401, 'warn'],
    ['POST', '/rooms', 429, 'warn'],
    ['POST', '/rooms', 499, 'warn'],
    ['POST', '/rooms', 502, 'error'],
    ['POST', '/rooms', 504, 'error'],
    ['GET', '/metrics', 200, 'debug'],
    ['GET', '/health/live', 200, 'debug'],
    ['GET', '/health/ready', 503, 'debug'],
    ['HEAD', '/health/ready', 200, 'debug'],
    ['POST', '/metrics', 404, 'warn'],
    ['GET', '/healthz', 404, 'warn'],
    ['GET', '/nowhere', 404, 'warn'],
  ])('%s %s %i → %s', (method, path, status, level) => {
    expect(requestLogLevel(method, path, status)).toBe(level);
  });
});

describe('pathOf and roomIdOf', () => {
  it('drops the query string and the fragment', () => {
    expect(pathOf({ originalUrl: '/rooms?api_key=x&Signature=y', url: '/' })).toBe('/rooms');
    expect(pathOf({ originalUrl: '/a#b', url: '/' })).toBe('/a');
  });

  it('takes roomId only when it is a string, and nothing else of the body', () => {
    expect(roomIdOf({ roomId: 'room-1', roomName: 'x' })).toBe('room-1');
    expect(roomIdOf({ roomId: 5 })).toBeUndefined();
    expect(roomIdOf(['room-1'])).toBeUndefined();
    expect(roomIdOf(undefined)).toBeUndefined();
    expect(roomIdOf({ roomId: 'r'.repeat(500) })!.length).toBeLessThan(70);
  });
});

class FakeResponse extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  writableFinished = false;

  /** As Node's ServerResponse ends: 'finish', then 'close'. */
  finish(): void {
    this.writableFinished = true;
    this.emit('finish');
    this.emit('close');
  }
}

function setUp(level: 'info' | 'debug' = 'debug') {
  const destination = new MemoryDestination();
  const config = loggingConfig(level, 'SENTINEL-request-log-secret-1234');
  const logger = createLogger(config, { destination });
  const events = new ZimCallEvents();
  new RequestContextRecorder(events);
  const middleware = new RequestLogMiddleware(logger, new RefusalLog({ logging: { ...config.logging, refusals: 'all' } }, logger));
  return { destination, events, middleware };
}

function request(overrides: Record<string, unknown> = {}) {
  return {
    method: 'POST',
    originalUrl: '/rooms?debug=1',
    url: '/rooms?debug=1',
    requestId: 'req-1',
    headers: { authorization: 'Bearer sk-never-logged-1' },
    body: { roomId: 'room-7', roomName: 'never logged name' },
    ...overrides,
  };
}

describe('RequestLogMiddleware', () => {
  it('writes one line when the response finishes, with the vendor outcome of the last attempt', async () => {
    const { destination, events, middleware } = setUp();
    const req = request();
    const res = new FakeResponse();
    let ranInContext = false;
    const next: NextFunction = () => {
      ranInContext = requestContext.getStore() !== undefined;
      // What the guard and ZimClient do while the request is handled (after an await, too).
      void Promise.resolve().then(() => {
        Object.assign(req, { client: { clientId: 'svc-alpha' } });
        events.slot({ action: 'CreateRoom', outcome: 'granted', waitedMs: 12.34, priority: 'interactive' });
        events.attempt({ action: 'CreateRoom', outcome: 'rate-limited' as never, zegoCode: 660300005, zegoRequestId: 'z-1', durationMs: 5, attempt: 1, willRetry: true });
        events.slot({ action: 'CreateRoom', outcome: 'granted', waitedMs: 1, priority: 'interactive' });
        events.attempt({ action: 'CreateRoom', outcome: 'success', zegoCode: 0, zegoRequestId: 'z-2', durationMs: 5, attempt: 2, willRetry: false });
      });
    };
    middleware.use(req as never, res as unknown as Response, next);
    expect(ranInContext).toBe(true);
    await Promise.resolve();
    await Promise.resolve();
    res.statusCode = 201;
    res.headersSent = true;
    res.finish();
    res.emit('close');

    expect(destination.lines).toHaveLength(1);
    const [line] = destination.lines;
    expect(line).toEqual({
      level: 'info',
      timestamp: expect.any(Number),
      pid: process.pid,
      context: 'RequestLog',
      requestId: 'req-1',
      method: 'POST',
      path: '/rooms',
      status: 201,
      durationMs: expect.any(Number),
      clientId: 'svc-alpha',
      roomId: 'room-7',
      zegoCode: 0,
      zegoRequestId: 'z-2',
      vendorAttempts: 2,
      vendorOutcome: 'success',
      limiterWaitMs: 13.3,
      limiterOutcome: 'granted',
      message: expect.stringMatching(/^POST \/rooms 201 [\d.]+ ms$/),
    });
    expect(destination.text).not.toMatch(/sk-never-logged-1|never logged name|debug=1/);
  });

  it('writes a 401 at warn, without client or vendor fields', () => {
    const { destination, middleware } = setUp();
    const res = new FakeResponse();
    middleware.use(request() as never, res as unknown as Response, () => undefined);
    res.statusCode = 401;
    res.finish();
    const [line] = destination.lines;
    expect(line).toEqual(expect.objectContaining({ level: 'warn', status: 401, roomId: 'room-7' }));
    for (const field of ['clientId', 'zegoCode', 'zegoRequestId', 'vendorAttempts', 'limiterWaitMs']) {
      expect(line).not.toHaveProperty(field);
    }
  });

  it('writes one line when the client hangs up first (499, aborted)', () => {
    const { destination, middleware } = setUp();
    const res = new FakeResponse();
    middleware.use(request() as never, res as unknown as Response, () => undefined);
    res.emit('close');
    res.emit('finish');
    expect(destination.lines).toHaveLength(1);
    expect(destination.lines[0]).toEqual(
      expect.objectContaining({ level: 'warn', status: 499, aborted: true, message: expect.stringContaining('client closed') }),
    );
  });

  it('writes probes and scrapes at debug only', () => {
    const { destination, middleware } = setUp('info');
    const res = new FakeResponse();
    middleware.use(request({ method: 'GET', originalUrl: '/metrics', body: undefined }) as never, res as unknown as Response, () => undefined);
    res.finish();
    expect(destination.lines).toHaveLength(0);
  });

  it('keeps concurrent requests apart', async () => {
    const { destination, events, middleware } = setUp();
    const run = (id: string, code: number) => {
      const res = new FakeResponse();
      middleware.use(request({ requestId: id }) as never, res as unknown as Response, () => {
        void new Promise((resolve) => setTimeout(resolve, code === 0 ? 5 : 1)).then(() =>
          events.attempt({ action: 'CreateRoom', outcome: code === 0 ? 'success' : ('conflict' as never), zegoCode: code, zegoRequestId: `z-${id}`, durationMs: 1, attempt: 1, willRetry: false }),
        );
      });
      return res;
    };
    const a = run('a', 0);
    const b = run('b', 660300014);
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (const res of [a, b]) {
      res.finish();
    }
    expect(destination.lines.map((l) => [l.requestId, l.zegoCode, l.zegoRequestId])).toEqual([
      ['a', 0, 'z-a'],
      ['b', 660300014, 'z-b'],
    ]);
  });

  it('says where the time of a request went, stage by stage, once it passed a named wait', () => {
    const { destination, middleware } = setUp();
    let now = 0;
    const progress = new RequestProgress(0, 10_000, () => now);
    const res = new FakeResponse();
    runWithRequestProgress(progress, () => middleware.use(request() as never, res as unknown as Response, () => undefined));
    now = 0.4;
    const leave = progress.enter('outbound slot');
    now = 3;
    leave();
    now = 3.5;
    res.statusCode = 201;
    res.finish();
    expect(destination.lines[0]!.stagesMs).toEqual({ handler: 0.9, 'outbound slot': 2.6 });

    // A refusal that never waited anywhere: no stages.
    const refused = new FakeResponse();
    runWithRequestProgress(new RequestProgress(0, 10_000), () => middleware.use(request() as never, refused as unknown as Response, () => undefined));
    refused.statusCode = 401;
    refused.finish();
    expect(destination.lines[1]).not.toHaveProperty('stagesMs');
  });

  it('ignores vendor events outside any request', () => {
    const { destination, events } = setUp();
    expect(() =>
      events.attempt({ action: 'CreateRoom', outcome: 'success', zegoCode: 0, durationMs: 1, attempt: 1, willRetry: false }),
    ).not.toThrow();
    expect(destination.lines).toHaveLength(0);
  });
});
