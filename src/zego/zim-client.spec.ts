import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Logger, type LoggerService } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { inspect } from 'node:util';
import { FakeZimServer, type FaultSpec, type ReceivedCall } from '../../test/fake-zim/fake-zim-server.js';
import { until } from '../../test/support/async-probes.js';
import { loadConfig, type AppConfig } from '../app-config.js';
import type { Env } from '../config/env-reader.js';
import { Secret } from '../config/secret.js';
import { RequestProgress, runWithRequestProgress } from '../http/request-progress.js';
import type { RequestStage } from '../http/request-stage.js';
import { LocalOutboundRateLimiter } from '../rate-limit/local-outbound-rate-limiter.js';
import {
  OutboundRateLimiter,
  OutboundRateLimitRefusal,
  type AcquireOptions,
} from '../rate-limit/outbound-rate-limiter.js';
import { CallDeadlinePassed } from './call-deadline-passed.js';
import { ZegoSecret } from './zego-secret.js';
import { ZegoSigner } from './zego-signer.js';
import { ZimCallError } from './zim-call-error.js';
import { ZimCallEvents, type ZimAttemptEvent, type ZimSlotEvent } from './zim-call-events.js';
import type { VendorConnectionPool } from './connection-pool/vendor-connection-pool.js';
import { createVendorConnectionPool } from './connection-pool/vendor-connection-pool.provider.js';
import { ZimClient, type ZimReply } from './zim-client.js';

const APP_ID = 246813579;
const SECRET = 'SENTINEL-zim-secret-5d0b7e19';

/** Counts every acquisition, retries included, and hands it to a real limiter (or lets it pass). */
class CountingLimiter extends OutboundRateLimiter {
  readonly mode = 'shared';
  acquisitions = 0;
  constructor(private readonly inner?: OutboundRateLimiter) {
    super();
  }
  async acquire(options: AcquireOptions): Promise<void> {
    this.acquisitions++;
    await this.inner?.acquire(options);
  }
}

/** Collects what the client logs, so tests can check that no secret reaches the logs. */
class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  private record = (...parts: unknown[]) => {
    this.lines.push(parts.map((p) => (typeof p === 'string' ? p : inspect(p, { depth: Infinity }))).join(' '));
  };
  log = this.record;
  error = this.record;
  warn = this.record;
  debug = this.record;
  verbose = this.record;
  fatal = this.record;
}

const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');

let fake: FakeZimServer;
const logs = new CapturingLogger();
const pools: VendorConnectionPool[] = [];

beforeAll(async () => {
  Logger.overrideLogger(logs);
  fake = new FakeZimServer({ appId: APP_ID, serverSecret: SECRET });
  await fake.start();
});

afterAll(async () => {
  await fake.stop();
  Logger.overrideLogger(true);
});

beforeEach(() => {
  fake.reset();
  logs.lines.length = 0;
});

afterEach(() => {
  for (const pool of pools.splice(0)) pool.onModuleDestroy();
});

interface Setup {
  env?: Env;
  limiter?: OutboundRateLimiter;
}

function setup({ env = {}, limiter }: Setup = {}) {
  const config: AppConfig = loadConfig({
    ZEGO_APP_ID: String(APP_ID),
    ZEGO_SERVER_SECRET: SECRET,
    API_KEYS: `svc:${'c'.repeat(64)}`,
    ZEGO_API_BASE_URL: fake.url,
    ZEGO_MAX_ATTEMPTS: '3',
    ...env,
  });
  const counting = new CountingLimiter(
    limiter ?? new LocalOutboundRateLimiter({ limit: 1000, windowMs: 1000, safetyMarginMs: 0 }),
  );
  const events = new ZimCallEvents();
  const attempts: ZimAttemptEvent[] = [];
  const slots: ZimSlotEvent[] = [];
  events.onAttempt((event) => attempts.push(event));
  events.onSlot((event) => slots.push(event));
  const pool = createVendorConnectionPool(config, events);
  pools.push(pool);
  // As Nest starts it: one connection opened at once, warm after its settling time.
  void pool.onApplicationBootstrap();
  const client = new ZimClient(config, new ZegoSigner(config, new ZegoSecret(config)), counting, events, pool);
  return { client, config, limiter: counting, attempts, slots, pool };
}

let roomCounter = 0;
const body = () => ({ FromUserId: 'alice', RoomId: `room-${++roomCounter}` });

/** The ZimCallError a call ends with, or a failure when it succeeds or fails otherwise. */
async function failure(promise: Promise<ZimReply>): Promise<ZimCallError> {
  const outcome = await promise.then(
    (reply) => ({ reply }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a failure, got ${JSON.stringify(outcome.reply)}`);
  expect(outcome.error).toBeInstanceOf(ZimCallError);
  return outcome.error as ZimCallError;
}

/** Everything an error could leak through: message, stack, details, inspection, JSON. */
function renderings(error: unknown): string {
  return [
    String(error),
    (error as Error).stack ?? '',
    inspect(error, { depth: Infinity, showHidden: true }),
    JSON.stringify(error),
    JSON.stringify((error as ZimCallError).details ?? {}),
  ].join('\n');
}

function expectNoSecrets(text: string, calls: ReceivedCall[]) {
  expect(text).not.toContain(SECRET);
  for (const call of calls) {
    if (call.query.Signature) expect(text).not.toContain(call.query.Signature);
    if (call.query.SignatureNonce) expect(text).not.toContain(call.query.SignatureNonce);
  }
}

function inject(fault: FaultSpec) {
  fake.injectFault(fault);
}

/** A local port on which nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('ZimClient against the fake vendor', () => {
  describe('a successful call', () => {
    it('returns the vendor reply', async () => {
      const { client } = setup();
      const sent = body();
      const reply = await client.call('CreateRoom', sent);
      expect(reply.Code).toBe(0);
      expect(typeof reply.RequestId).toBe('string');
      expect(reply.RequestId).not.toBe('');
      expect(reply.AttributeSeq).toBe(0);
      expect(fake.createdRooms).toEqual([sent.RoomId]);
      expect(fake.calls).toHaveLength(1);
    });

    it('sends the action and all five public parameters in the query, signed as the vendor checks', async () => {
      const { client } = setup();
      const before = Math.floor(Date.now() / 1000);
      await client.call('CreateRoom', body());
      const after = Math.floor(Date.now() / 1000);

      const [call] = fake.calls;
      expect(call!.method).toBe('POST');
      expect(call!.code).toBe(0); // the fake verified AppId, timestamp, nonce and signature
      const q = call!.query;
      expect(Object.keys(q).sort()).toEqual(
        ['Action', 'AppId', 'Signature', 'SignatureNonce', 'SignatureVersion', 'Timestamp'].sort(),
      );
      expect(q.Action).toBe('CreateRoom');
      expect(q.AppId).toBe(String(APP_ID));
      expect(q.SignatureVersion).toBe('2.0');
      expect(q.SignatureNonce).toMatch(/^[0-9a-f]{16}$/);
      expect(Number(q.Timestamp)).toBeGreaterThanOrEqual(before);
      expect(Number(q.Timestamp)).toBeLessThanOrEqual(after);
      expect(q.Signature).toBe(md5(`${APP_ID}${q.SignatureNonce}${SECRET}${q.Timestamp}`));
    });

    it('posts the business parameters as a JSON body', async () => {
      const { client } = setup();
      const sent = {
        FromUserId: 'alice',
        RoomId: 'room-json',
        RoomName: 'Salle 会议',
        Attributes: [{ Key: 'k', Value: 'v', AutoDelete: 1 }],
      };
      await client.call('CreateRoom', sent);
      const [call] = fake.calls;
      expect(call!.headers['content-type']).toMatch(/^application\/json/);
      expect(call!.body).toEqual(sent);
      expect(call!.rawBody).toBe(JSON.stringify(sent));
    });

    it('passes every attempt through the outbound limiter', async () => {
      const { client, limiter } = setup();
      await client.call('CreateRoom', body());
      await client.call('CreateRoom', body());
      expect(limiter.acquisitions).toBe(2);
    });
  });

  describe('vendor codes worth a retry', () => {
    it.each([
      [1, 503],
      [7, 429],
      [100000015, 503],
      [660300005, 429],
      [660300006, 429],
    ])('retries code %i up to ZEGO_MAX_ATTEMPTS, then answers %i', async (code, status) => {
      const { client, limiter } = setup({ env: { ZEGO_MAX_ATTEMPTS: '3' } });
      inject({ kind: 'code', code });
      const error = await failure(client.call('CreateRoom', body()));
      expect(fake.calls).toHaveLength(3);
      expect(limiter.acquisitions).toBe(3);
      expect(error.status).toBe(status);
      expect(error.details.zegoCode).toBe(code);
      expect(error.details.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(typeof error.details.zegoRequestId).toBe('string');
      expectNoSecrets(renderings(error), fake.calls);
    });

    it('follows the configured number of attempts', async () => {
      const { client } = setup({ env: { ZEGO_MAX_ATTEMPTS: '2' } });
      inject({ kind: 'code', code: 1 });
      await failure(client.call('CreateRoom', body()));
      expect(fake.calls).toHaveLength(2);
    });

    it('does not retry at all with ZEGO_MAX_ATTEMPTS=1', async () => {
      const { client } = setup({ env: { ZEGO_MAX_ATTEMPTS: '1' } });
      inject({ kind: 'code', code: 7 });
      expect((await failure(client.call('CreateRoom', body()))).status).toBe(429);
      expect(fake.calls).toHaveLength(1);
    });

    it('succeeds when the vendor recovers: one busy answer, then success', async () => {
      const { client } = setup();
      inject({ kind: 'code', code: 1, times: 1 });
      const sent = body();
      const reply = await client.call('CreateRoom', sent);
      expect(reply.Code).toBe(0);
      expect(fake.calls.map((c) => c.code)).toEqual([1, 0]);
      expect(fake.createdRooms).toEqual([sent.RoomId]);
    });

    it('signs every attempt afresh', async () => {
      const { client } = setup();
      inject({ kind: 'code', code: 660300005, times: 2 });
      await client.call('CreateRoom', body());
      const calls = fake.calls;
      expect(calls).toHaveLength(3);
      expect(new Set(calls.map((c) => c.query.SignatureNonce)).size).toBe(3);
      for (const { query: q } of calls) {
        expect(q.Signature).toBe(md5(`${APP_ID}${q.SignatureNonce}${SECRET}${q.Timestamp}`));
      }
    });
  });

  describe('vendor codes not worth a retry', () => {
    it.each([
      [660000002, 400, 'invalid-request'],
      [660500002, 422, 'operator-not-registered'],
      [660300014, 409, 'room-exists'],
      [660300015, 503, 'room-quota-exceeded'],
      [3, 502, 'gateway-misconfigured'],
      [100000004, 502, 'gateway-misconfigured'],
      [42, 502, 'upstream-error'],
      [660000001, 502, 'upstream-error'],
    ])('answers code %i with %i after one call', async (code, status, outcome) => {
      const { client } = setup({ env: { ZEGO_MAX_ATTEMPTS: '5' } });
      inject({ kind: 'code', code });
      const error = await failure(client.call('CreateRoom', body()));
      expect(fake.calls).toHaveLength(1);
      expect(error.status).toBe(status);
      expect(error.outcome).toBe(outcome);
      expect(error.details.zegoCode).toBe(code);
      expectNoSecrets(renderings(error), fake.calls);
    });

    it('reports a wrong secret, which the fake vendor refuses, as a misconfiguration without retry', async () => {
      const loaded = setup().config;
      const wrong = { ...loaded, zego: { ...loaded.zego, serverSecret: new Secret('SENTINEL-wrong-secret') } };
      const events = new ZimCallEvents();
      const pool = createVendorConnectionPool(wrong, events);
      pools.push(pool);
      const client = new ZimClient(wrong, new ZegoSigner(wrong, new ZegoSecret(wrong)), new CountingLimiter(), events, pool);
      const error = await failure(client.call('CreateRoom', body()));
      expect(fake.calls.map((c) => c.code)).toEqual([100000005]);
      expect(error.status).toBe(502);
      expect(error.outcome).toBe('gateway-misconfigured');
      expectNoSecrets(renderings(error), fake.calls);
      expect(renderings(error)).not.toContain('SENTINEL-wrong-secret');
      // Operators are told, in the log, without the secret.
      expect(logs.lines.some((line) => line.includes('100000005'))).toBe(true);
      expectNoSecrets(logs.lines.join('\n'), fake.calls);
      expect(logs.lines.join('\n')).not.toContain('SENTINEL-wrong-secret');
    });

    it('answers a room that exists with 409 on the second creation', async () => {
      const { client } = setup();
      const sent = body();
      await client.call('CreateRoom', sent);
      const error = await failure(client.call('CreateRoom', sent));
      expect(error.status).toBe(409);
      expect(fake.calls.map((c) => c.code)).toEqual([0, 660300014]);
    });
  });

  describe('transport failures', () => {
    it("retries a connection reset ('reset') and succeeds once the vendor answers", async () => {
      const { client } = setup();
      inject({ kind: 'reset', times: 1 });
      const reply = await client.call('CreateRoom', body());
      expect(reply.Code).toBe(0);
      expect(fake.calls.map((c) => c.fault)).toEqual(['reset', null]);
    });

    it('remembers that a reset attempt may have acted: a retry finding the room says so', async () => {
      const { client } = setup();
      inject({ kind: 'resetAfterCreate', times: 1 });
      const error = await failure(client.call('CreateRoom', body()));
      expect(fake.calls.map((c) => c.code)).toEqual([0, 660300014]);
      expect(error.outcome).toBe('room-exists');
      expect(error.status).toBe(409);
      expect(error.earlierAttemptMayHaveActed).toBe(true);
    });

    it('does not suspect an earlier attempt when the room existed before the call', async () => {
      const { client } = setup();
      const sent = body();
      await client.call('CreateRoom', sent);
      const error = await failure(client.call('CreateRoom', sent));
      expect(error.outcome).toBe('room-exists');
      expect(error.earlierAttemptMayHaveActed).toBe(false);
    });

    it("retries resets up to ZEGO_MAX_ATTEMPTS and answers 502", async () => {
      const { client } = setup({ env: { ZEGO_MAX_ATTEMPTS: '3' } });
      inject({ kind: 'reset' });
      const error = await failure(client.call('CreateRoom', body()));
      expect(fake.calls).toHaveLength(3);
      expect(error.status).toBe(502);
      expect(error.outcome).toBe('unreachable');
      expectNoSecrets(renderings(error), fake.calls);
      expectNoSecrets(logs.lines.join('\n'), fake.calls);
    });

    it('retries a refused connection and answers 502', async () => {
      const port = await closedPort();
      const { client, limiter } = setup({
        env: { ZEGO_API_BASE_URL: `http://127.0.0.1:${port}`, ZEGO_MAX_ATTEMPTS: '3' },
      });
      const error = await failure(client.call('CreateRoom', body()));
      expect(limiter.acquisitions).toBe(3);
      expect(error.status).toBe(502);
      expect(error.outcome).toBe('unreachable');
      expect(error.message).toContain('ECONNREFUSED');
      // No connection, no request: nothing the vendor could have acted on.
      expect(error.earlierAttemptMayHaveActed).toBe(false);
      expectNoSecrets(renderings(error), []);
      expect(renderings(error)).not.toContain(`127.0.0.1:${port}`);
      expect(logs.lines.join('\n')).not.toContain(SECRET);
    });

    it("answers 504 after the timeout when the vendor hangs, without a retry", async () => {
      const { client, limiter } = setup({ env: { ZEGO_TIMEOUT_MS: '200', ZEGO_MAX_ATTEMPTS: '5' } });
      inject({ kind: 'hang' });
      const error = await failure(client.call('CreateRoom', body()));
      expect(error.status).toBe(504);
      expect(error.outcome).toBe('timeout');
      expect(fake.calls).toHaveLength(1);
      expect(limiter.acquisitions).toBe(1);
      expectNoSecrets(renderings(error), fake.calls);
    });

    it('waits for a slow answer that comes within the timeout', async () => {
      const { client } = setup({ env: { ZEGO_TIMEOUT_MS: '5000' } });
      inject({ kind: 'delay', delayMs: 50, times: 1 });
      await expect(client.call('CreateRoom', body())).resolves.toMatchObject({ Code: 0 });
      expect(fake.calls).toHaveLength(1);
    });
  });

  describe('answers that are not a ZIM reply', () => {
    it.each(['garbage', 'truncatedJson', 'http500', 'html503', 'wrongContentType'] as const)(
      "answers '%s' with 502 after one call",
      async (kind) => {
        const { client } = setup({ env: { ZEGO_MAX_ATTEMPTS: '5' } });
        inject({ kind });
        const error = await failure(client.call('CreateRoom', body()));
        expect(error.status).toBe(502);
        expect(error.outcome).toBe('upstream-error');
        expect(error.details.zegoCode).toBeUndefined();
        expect(fake.calls).toHaveLength(1);
        expectNoSecrets(renderings(error), fake.calls);
      },
    );
  });

  describe('the call deadline', () => {
    it('stops retries when the next attempt would not fit', async () => {
      // The first backoff is at least 50 ms; with the 100 ms timeout a retry needs 150 ms of the
      // 150 ms deadline after the first attempt took some time: it never fits.
      const { client, pool } = setup({
        env: { ZEGO_TIMEOUT_MS: '100', ZEGO_CALL_DEADLINE_MS: '150', ZEGO_MAX_ATTEMPTS: '10' },
      });
      // A deadline this short leaves no wait for a connection: the gateway has been up a while.
      await until(() => pool.stats().idle > 0, 'a warm vendor connection');
      inject({ kind: 'code', code: 1 });
      const error = await failure(client.call('CreateRoom', body()));
      expect(error.status).toBe(503);
      expect(fake.calls).toHaveLength(1);
    });

    it('bounds the number of attempts below ZEGO_MAX_ATTEMPTS', async () => {
      // Backoffs of at least 50, 100 and 200 ms: after the third attempt (at 150 ms or later)
      // a fourth would need 200 + 100 ms more, past the 300 ms deadline.
      const { client, pool } = setup({
        env: { ZEGO_TIMEOUT_MS: '100', ZEGO_CALL_DEADLINE_MS: '300', ZEGO_MAX_ATTEMPTS: '10' },
      });
      await until(() => pool.stats().idle > 0, 'a warm vendor connection');
      inject({ kind: 'code', code: 7 });
      const error = await failure(client.call('CreateRoom', body()));
      expect(error.status).toBe(429);
      expect(fake.calls.length).toBeGreaterThanOrEqual(1);
      expect(fake.calls.length).toBeLessThanOrEqual(3);
    });
  });

  describe("the request's deadline, from its arrival", () => {
    /** A request's progress that remembers every stage it entered. */
    class RecordedProgress extends RequestProgress {
      readonly entered: RequestStage[] = [];
      override enter(stage: RequestStage): () => void {
        this.entered.push(stage);
        return super.enter(stage);
      }
    }

    /** A limiter that grants at once and remembers how long each acquisition was allowed to wait. */
    function recordingLimiter() {
      const asked: number[] = [];
      const limiter = new (class extends OutboundRateLimiter {
        readonly mode = 'shared';
        async acquire(options: AcquireOptions): Promise<void> {
          asked.push(options.maxWaitMs);
        }
      })();
      return { asked, limiter };
    }

    /** A request that arrived `agoMs` ago with the configured deadline. */
    const arrived = (agoMs: number, deadlineMs = 10_000) => new RecordedProgress(performance.now() - agoMs, deadlineMs);

    it('keeps to the deadline of the request it is made for: time spent before the call is not given again', async () => {
      const { asked, limiter } = recordingLimiter();
      const { client } = setup({ limiter, env: { ZEGO_TIMEOUT_MS: '5000', RATE_LIMIT_MAX_WAIT_MS: '2000' } });
      // 4 s went on the quota, the idempotency key, a slow body: 6 s left, 5 s of it for the attempt.
      await runWithRequestProgress(arrived(4_000), () => client.call('CreateRoom', body()));
      expect(asked).toHaveLength(1);
      expect(asked[0]).toBeLessThanOrEqual(1_000);
      expect(asked[0]).toBeGreaterThan(500);
    });

    it('takes an explicit deadline over the request\'s', async () => {
      const { asked, limiter } = recordingLimiter();
      const { client } = setup({ limiter, env: { ZEGO_TIMEOUT_MS: '5000', RATE_LIMIT_MAX_WAIT_MS: '2000' } });
      await runWithRequestProgress(arrived(4_000), () =>
        client.call('CreateRoom', body(), { deadline: performance.now() + 5_300 }),
      );
      expect(asked[0]).toBeLessThanOrEqual(300);
      expect(asked[0]).toBeGreaterThan(0);
    });

    it('sends nothing for a request whose deadline has passed: 503, safe to retry', async () => {
      const { client, limiter } = setup();
      const error = await runWithRequestProgress(arrived(10_001), () => client.call('CreateRoom', body())).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CallDeadlinePassed);
      expect((error as CallDeadlinePassed).status).toBe(503);
      expect((error as CallDeadlinePassed).details.retryAfterSeconds).toBe(1);
      expect(limiter.acquisitions).toBe(0);
      expect(fake.calls).toHaveLength(0);
    });

    it('ends an attempt at the deadline when less than ZEGO_TIMEOUT_MS is left of it', async () => {
      const { client, pool } = setup({ env: { ZEGO_TIMEOUT_MS: '5000' } });
      // With less than a full attempt left, no time is left to wait for a slot or a connection.
      await until(() => pool.stats().idle > 0, 'a warm vendor connection');
      inject({ kind: 'hang' });
      const startedAt = performance.now();
      const error = await failure(runWithRequestProgress(arrived(9_700), () => client.call('CreateRoom', body())));
      const tookMs = performance.now() - startedAt;
      expect(error.status).toBe(504);
      expect(error.message).toMatch(/^The vendor did not answer within \d+ ms/);
      expect(tookMs).toBeGreaterThanOrEqual(250);
      expect(tookMs).toBeLessThan(2_000);
      expect(fake.calls).toHaveLength(1);
    });

    it('names what the request waits on: the slot, each attempt, the backoff between them', async () => {
      const { client } = setup({ env: { ZEGO_MAX_ATTEMPTS: '3' } });
      inject({ kind: 'code', code: 1, times: 1 });
      const progress = arrived(0);
      await runWithRequestProgress(progress, () => client.call('CreateRoom', body()));
      expect(progress.entered).toEqual(['outbound slot', 'vendor attempt 1', 'retry backoff', 'outbound slot', 'vendor attempt 2']);
      // Back in the caller's code once the call is over.
      expect(progress.stage).toBe('handler');
    });

    it('names nothing, and keeps ZEGO_CALL_DEADLINE_MS from its start, for a call made without a request', async () => {
      const { asked, limiter } = recordingLimiter();
      const { client } = setup({ limiter, env: { ZEGO_TIMEOUT_MS: '5000', ZEGO_CALL_DEADLINE_MS: '6000', RATE_LIMIT_MAX_WAIT_MS: '2000' } });
      await client.call('CreateRoom', body());
      expect(asked[0]).toBeLessThanOrEqual(1_000);
      expect(asked[0]).toBeGreaterThan(900);
    });
  });

  describe('the outbound limiter', () => {
    it('refuses a call, without sending it, when no slot is free soon enough', async () => {
      const limiter = new LocalOutboundRateLimiter({ limit: 1, windowMs: 60_000, safetyMarginMs: 0 });
      const { client } = setup({ limiter });
      await client.call('CreateRoom', body());
      const refusal = await client.call('CreateRoom', body()).catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(OutboundRateLimitRefusal);
      expect((refusal as OutboundRateLimitRefusal).status).toBe(429);
      expect(fake.calls).toHaveLength(1);
    });

    it('never lets the limiter wait longer than RATE_LIMIT_MAX_WAIT_MS', async () => {
      const asked: number[] = [];
      const recording = new (class extends OutboundRateLimiter {
        readonly mode = 'shared';
        async acquire(options: AcquireOptions): Promise<void> {
          asked.push(options.maxWaitMs);
        }
      })();
      const { client } = setup({ limiter: recording, env: { RATE_LIMIT_MAX_WAIT_MS: '700' } });
      await client.call('CreateRoom', body());
      expect(asked).toEqual([700]);
    });
  });

  describe('events for metrics and request logs', () => {
    it('reports a successful attempt with the vendor Code and RequestId, and the granted slot', async () => {
      const { client, attempts, slots } = setup();
      const reply = await client.call('CreateRoom', body());
      expect(attempts).toEqual([
        {
          action: 'CreateRoom',
          outcome: 'success',
          zegoCode: 0,
          zegoRequestId: reply.RequestId,
          durationMs: expect.any(Number),
          attempt: 1,
          willRetry: false,
        },
      ]);
      expect(slots).toEqual([{ action: 'CreateRoom', outcome: 'granted', waitedMs: expect.any(Number), priority: 'interactive' }]);
    });

    it('reports every attempt of a retried call, saying which ones are retried', async () => {
      const { client, attempts, slots } = setup({ env: { ZEGO_MAX_ATTEMPTS: '3' } });
      inject({ kind: 'code', code: 660300005 });
      await failure(client.call('CreateRoom', body()));
      expect(attempts.map((a) => [a.attempt, a.outcome, a.zegoCode, a.willRetry])).toEqual([
        [1, 'rate-limited', 660300005, true],
        [2, 'rate-limited', 660300005, true],
        [3, 'rate-limited', 660300005, false],
      ]);
      expect(slots.map((e) => e.outcome)).toEqual(['granted', 'granted', 'granted']);
    });

    it('reports a transport failure without a Code', async () => {
      const { client, attempts } = setup({ env: { ZEGO_TIMEOUT_MS: '200', ZEGO_MAX_ATTEMPTS: '1' } });
      inject({ kind: 'hang' });
      await failure(client.call('CreateRoom', body()));
      expect(attempts).toEqual([expect.objectContaining({ outcome: 'timeout', zegoCode: undefined, willRetry: false })]);
    });

    it('reports a refused slot, and no attempt', async () => {
      const limiter = new LocalOutboundRateLimiter({ limit: 1, windowMs: 60_000, safetyMarginMs: 0 });
      const { client, attempts, slots } = setup({ limiter });
      await client.call('CreateRoom', body());
      await client.call('CreateRoom', body()).catch(() => undefined);
      expect(slots.map((e) => e.outcome)).toEqual(['granted', 'refused']);
      expect(attempts).toHaveLength(1);
    });

    it('is not disturbed by a listener that throws', async () => {
      const { client } = setup();
      const events = (client as unknown as { events: ZimCallEvents }).events;
      events.onAttempt(() => {
        throw new Error('a broken observer');
      });
      await expect(client.call('CreateRoom', body())).resolves.toMatchObject({ Code: 0 });
    });
  });

  describe('the caller going away', () => {
    it('stops waiting for the next attempt and sends no more calls', async () => {
      const { client } = setup({ env: { ZEGO_MAX_ATTEMPTS: '10' } });
      inject({ kind: 'code', code: 1 });
      const controller = new AbortController();
      const pending = client.call('CreateRoom', body(), { signal: controller.signal });
      const deadline = performance.now() + 5000;
      while (fake.calls.length === 0 && performance.now() < deadline) {
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(fake.calls).toHaveLength(1);
      controller.abort();
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
      expect(fake.calls).toHaveLength(1);
    });

    it('sends nothing for a caller that is already gone', async () => {
      const { client } = setup();
      await expect(
        client.call('CreateRoom', body(), { signal: AbortSignal.abort() }),
      ).rejects.toMatchObject({ name: 'AbortError' });
      expect(fake.calls).toHaveLength(0);
    });
  });

  describe('the keep-alive race', () => {
    /**
     * A vendor that ends every kept-alive connection when a second request arrives on it, without
     * reading it: what a vendor closing an idle connection looks like to a request written on it
     * just then. Requests on new connections are answered.
     */
    async function vendorClosingReusedConnections(): Promise<{ url: string; answered: string[]; close: () => Promise<void> }> {
      const answered: string[] = [];
      const sockets = new Set<import('node:net').Socket>();
      const server = createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        let requests = 0;
        let buffer = '';
        socket.on('data', (chunk) => {
          buffer += chunk.toString('latin1');
          const end = buffer.indexOf('\r\n\r\n');
          if (end < 0) return;
          const length = Number(/content-length: *(\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
          if (buffer.length < end + 4 + length) return;
          const body = buffer.slice(end + 4, end + 4 + length);
          buffer = buffer.slice(end + 4 + length);
          if (++requests > 1) {
            socket.end();
            return;
          }
          answered.push(JSON.parse(body).RoomId);
          const reply = JSON.stringify({ Code: 0, Message: 'success', RequestId: `r-${answered.length}` });
          socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${reply.length}\r\nConnection: keep-alive\r\n\r\n${reply}`);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as import('node:net').AddressInfo;
      return {
        url: `http://127.0.0.1:${port}/`,
        answered,
        close: () => {
          for (const socket of sockets) socket.destroy();
          return new Promise((resolve) => server.close(() => resolve()));
        },
      };
    }

    it('sends a request the vendor closed its connection on, unread, again on the same slot: no failure, nothing done twice', async () => {
      const vendor = await vendorClosingReusedConnections();
      try {
        const { client, pool, attempts } = setup({ env: { ZEGO_API_BASE_URL: vendor.url } });
        const resent: number[] = [];
        (client as unknown as { events: ZimCallEvents }).events.onTransport((event) => {
          if (event.kind === 'resent') resent.push(event.ms);
        });
        await until(() => pool.stats().idle > 0, 'a warm vendor connection');
        const rooms = Array.from({ length: 6 }, (_, i) => `race-${i}`);
        for (const roomId of rooms) {
          const reply = await client.call('CreateRoom', { FromUserId: 'alice', RoomId: roomId });
          expect(reply.Code).toBe(0);
        }
        // Each room reached the vendor once; the requests it closed a connection on were sent again, not retried as failures.
        expect(vendor.answered).toEqual(rooms);
        expect(resent.length).toBeGreaterThan(0);
        expect(attempts.map((a) => a.outcome)).toEqual(rooms.map(() => 'success'));
      } finally {
        await vendor.close();
      }
    });
  });
});
