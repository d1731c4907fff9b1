/**
 * End to end, over real HTTP: how the built gateway (`node dist/main.js`, a child process) maps
 * the vendor's answers, faults and silences to HTTP, with the fake ZIM (and, for answers the fake
 * cannot give, a tiny stub vendor) in this process. Covers the vendor side of the contract:
 * business codes, retries with Retry-After, configuration errors, upstream garbage, connection
 * resets, an unreachable vendor and a hanging one.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FaultKind, ReceivedCall } from './fake-zim/fake-zim-server.js';
import { expectErrorBody } from './support/error-body.js';
import type { GatewayProcess, LogLine } from './support/gateway-process.js';
import { HttpRecorder, type RecordedExchange } from './support/http-recorder.js';
import { closedPort } from './support/ports.js';
import { scenario, withFakeZim } from './support/scenario.js';
import { findLeaks, gatewayOutputs } from './support/secret-scan.js';

const APP_ID = 271828182;
const SECRET = 'SENTINEL-secret-vendor-0b5e8c1f7a24d96e';
const WRONG_SECRET = 'SENTINEL-wrong-secret-6d3a9f02c8e1b574';
const KEY = 'sk-SENTINEL-vendor-7e1c4b9a0d3f5862';
const REGISTERED = ['ops-bot', 'ops-default'];
const MAX_ATTEMPTS = 3;
const START_TIMEOUT = 30_000;

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET, registeredUsers: REGISTERED },
  apiKeys: { 'svc-vendor-tests': KEY },
  env: {
    // These suites fire requests back to back; quotas have their own suite.
    CLIENT_RATE_LIMIT: '100000',
    ZEGO_DEFAULT_FROM_USER_ID: 'ops-default',
    ZEGO_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
  },
});
const { fake } = s;
const gw = s.gatewayBeforeAll();
const http = new HttpRecorder();

let roomCounter = 0;
const newRoomId = (): string => `vendor-e2e-${++roomCounter}`;

function createRoom(gateway: GatewayProcess, body: Record<string, unknown> = {}): Promise<RecordedExchange> {
  return http.request(`${gateway.url}/rooms`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ roomId: newRoomId(), fromUserId: 'ops-bot', ...body }),
  });
}

/** Vendor-side failures never carry the per-field `errors` list. */
const expectError = (res: RecordedExchange, status: number, vendor?: { zegoCode: number }): Record<string, unknown> =>
  expectErrorBody(res, status, { ...vendor, noFieldErrors: true });

function expectRetryAfter(res: RecordedExchange): void {
  const value = res.headers['retry-after'];
  expect(value).toMatch(/^\d+$/);
  expect(Number(value)).toBeGreaterThanOrEqual(1);
}

/** Every attempt was a fresh, properly signed call of the same body. */
function expectRetriesOfOneRequest(calls: ReceivedCall[]): void {
  const nonces = new Set(calls.map((c) => c.query.SignatureNonce));
  expect(nonces.size).toBe(calls.length);
  const bodies = new Set(calls.map((c) => c.rawBody));
  expect(bodies.size).toBe(1);
}

const message = (line: LogLine): string => (typeof line.message === 'string' ? line.message : '');

/** The gateway logged a configuration error naming this vendor code, after `since`. */
async function expectConfigurationErrorLogged(gateway: GatewayProcess, code: number, since: number): Promise<void> {
  const line = await gateway.waitForLog(
    (l) => /configuration error/i.test(message(l)) && message(l).includes(String(code)),
    { since },
  );
  expect(line.level).toBe('error');
}

beforeEach(() => fake.reset());

// ------------------------------------------------------------------------------------------------

describe('vendor business codes', () => {
  it('660000002 parameter error: 400 with zegoCode, not retried', async () => {
    fake.injectFault({ kind: 'code', code: 660000002 });
    const res = await createRoom(gw);
    expectError(res, 400, { zegoCode: 660000002 });
    expect(res.headers['retry-after']).toBeUndefined();
    expect(fake.calls.map((c) => c.code)).toEqual([660000002]);
  });

  it('660500002 operator not registered (the fake knows only registered users): 422', async () => {
    const res = await createRoom(gw, { fromUserId: 'stranger' });
    expectError(res, 422, { zegoCode: 660500002 });
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]!.code).toBe(660500002);
    expect((fake.calls[0]!.body as { FromUserId: string }).FromUserId).toBe('stranger');
    expect(fake.createdRooms).toEqual([]);
  });

  it('660200001 operator not registered: 422', async () => {
    fake.injectFault({ kind: 'code', code: 660200001 });
    const res = await createRoom(gw);
    expectError(res, 422, { zegoCode: 660200001 });
    expect(fake.calls.map((c) => c.code)).toEqual([660200001]);
  });

  it('660300014 room exists (the same room twice): 409, the first room stays', async () => {
    const roomId = newRoomId();
    const first = await createRoom(gw, { roomId });
    expect(first.status).toBe(201);
    const second = await createRoom(gw, { roomId });
    expectError(second, 409, { zegoCode: 660300014 });
    expect(fake.calls.map((c) => c.code)).toEqual([0, 660300014]);
    expect(fake.createdRooms).toEqual([roomId]);
    // The vendor's RequestId of the refusal is passed on, not the first call's.
    expect((second.json as { zegoRequestId: string }).zegoRequestId).not.toBe(
      (first.json as { zegoRequestId: string }).zegoRequestId,
    );
  });

  describe('660300015 room quota (a fake with roomQuota 1)', () => {
    const quotaFake = withFakeZim({ appId: APP_ID, serverSecret: SECRET, roomQuota: 1 });
    const quotaGw = s.gatewayBeforeAll(() => ({ ZEGO_API_BASE_URL: quotaFake.url }));
    afterAll(() => quotaGw.stop());

    it('503 with zegoCode once the quota is spent, not retried', async () => {
      expect((await createRoom(quotaGw)).status).toBe(201);
      const res = await createRoom(quotaGw);
      expectError(res, 503, { zegoCode: 660300015 });
      expect(quotaFake.calls.map((c) => c.code)).toEqual([0, 660300015]);
      expect(quotaFake.createdRooms).toHaveLength(1);
    });
  });
});

describe(`retryable codes (ZEGO_MAX_ATTEMPTS=${MAX_ATTEMPTS})`, () => {
  it.each([
    [660300005, 429],
    [660300006, 429],
    [7, 429],
    [1, 503],
    [100000015, 503],
  ])('%i persisting: %i with Retry-After after exactly ZEGO_MAX_ATTEMPTS calls', async (code, status) => {
    fake.injectFault({ kind: 'code', code });
    const res = await createRoom(gw);
    expectError(res, status, { zegoCode: code });
    expectRetryAfter(res);
    expect(fake.calls).toHaveLength(MAX_ATTEMPTS);
    expect(fake.calls.map((c) => c.code)).toEqual(Array(MAX_ATTEMPTS).fill(code));
    expectRetriesOfOneRequest(fake.calls);
    expect(fake.createdRooms).toEqual([]);
  });

  it.each([660300005, 660300006, 7, 1, 100000015])('%i once, then success: 201 after two calls', async (code) => {
    fake.injectFault({ kind: 'code', code, times: 1 });
    const roomId = newRoomId();
    const res = await createRoom(gw, { roomId });
    expect(res.status).toBe(201);
    expect(res.json).toEqual({ roomId, attributeSeq: 0, zegoRequestId: expect.any(String) });
    expect(res.headers['retry-after']).toBeUndefined();
    expect(fake.calls.map((c) => c.code)).toEqual([code, 0]);
    expectRetriesOfOneRequest(fake.calls);
    expect(fake.createdRooms).toEqual([roomId]);
  });
});

describe('gateway configuration errors: 502, logged as a configuration error, secret never shown', () => {
  it.each([3, 100000001, 100000004, 100000005, 100000011, 100000016, 100000017])(
    'code %i (injected): 502 with zegoCode, not retried',
    async (code) => {
      const mark = gw.logMark();
      fake.injectFault({ kind: 'code', code });
      const res = await createRoom(gw);
      const body = expectError(res, 502, { zegoCode: code });
      expect(res.text).not.toContain(SECRET);
      expect(String(body.message)).not.toMatch(/secret/i);
      expect(fake.calls.map((c) => c.code)).toEqual([code]);
      await expectConfigurationErrorLogged(gw, code, mark);
    },
  );

  describe('a gateway started with the wrong secret', () => {
    const wrongSecret = s.gatewayBeforeAll({ ZEGO_SERVER_SECRET: WRONG_SECRET });

    it('the real vendor check answers 100000005: 502, configuration error logged, no secret anywhere', async () => {
      const mark = wrongSecret.logMark();
      const res = await createRoom(wrongSecret);
      expectError(res, 502, { zegoCode: 100000005 });
      expect(fake.calls.map((c) => c.code)).toEqual([100000005]);
      expect(fake.createdRooms).toEqual([]);
      await expectConfigurationErrorLogged(wrongSecret, 100000005, mark);
      for (const text of [res.text, JSON.stringify(res.headers), wrongSecret.stdout(), wrongSecret.stderr()]) {
        expect(text).not.toContain(WRONG_SECRET);
        expect(text).not.toContain(SECRET);
      }
    });
  });

  describe('a gateway started with the wrong AppId', () => {
    const wrongAppId = s.gatewayBeforeAll({ ZEGO_APP_ID: String(APP_ID + 1) });

    it('the vendor answers 3 (authentication failed): 502, configuration error logged', async () => {
      const mark = wrongAppId.logMark();
      const res = await createRoom(wrongAppId);
      expectError(res, 502, { zegoCode: 3 });
      expect(fake.calls.map((c) => c.code)).toEqual([3]);
      expect(fake.calls[0]!.query.AppId).toBe(String(APP_ID + 1));
      await expectConfigurationErrorLogged(wrongAppId, 3, mark);
    });
  });
});

describe('upstream failures: 502, not retried', () => {
  it.each([
    ['HTTP 500', 'http500'],
    ['an HTML 503 page', 'html503'],
    ['a body that is not JSON (labelled JSON)', 'garbage'],
    ['truncated JSON', 'truncatedJson'],
    ['a text/plain "OK" without any Code', 'wrongContentType'],
  ] as [string, FaultKind][])('%s', async (_name, kind) => {
    fake.injectFault({ kind });
    const res = await createRoom(gw);
    expectError(res, 502);
    // The vendor's body is not relayed.
    for (const fragment of ['Internal Server Error', '<html', '<<not json>>', '{"Code":0,"Mess', '"OK"']) {
      expect(res.text).not.toContain(fragment);
    }
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]!.fault).toBe(kind);
  });

  it('an unknown code (123): 502 with zegoCode', async () => {
    fake.injectFault({ kind: 'code', code: 123 });
    const res = await createRoom(gw);
    expectError(res, 502, { zegoCode: 123 });
    expect(fake.calls.map((c) => c.code)).toEqual([123]);
  });

  describe('JSON answers without a numeric Code (a stub vendor)', () => {
    let reply: { status: number; contentType: string; body: string } = { status: 200, contentType: 'application/json', body: '{}' };
    let stubCalls = 0;
    const stub: Server = createServer((req, res) => {
      stubCalls++;
      req.resume();
      req.on('end', () => {
        res.writeHead(reply.status, { 'Content-Type': reply.contentType, Location: 'http://127.0.0.1:1/' });
        res.end(reply.body);
      });
    });
    let stubGw: GatewayProcess;
    beforeAll(async () => {
      await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
      const { port } = stub.address() as AddressInfo;
      stubGw = await s.startGateway({ ZEGO_API_BASE_URL: `http://127.0.0.1:${port}` });
    }, START_TIMEOUT);
    afterAll(async () => {
      await stubGw.stop();
      stub.closeAllConnections();
      await new Promise<void>((resolve) => stub.close(() => resolve()));
    });
    beforeEach(() => {
      stubCalls = 0;
    });

    it.each([
      ['Code as a string', 200, '{"Code":"0","Message":"success","RequestId":"r1"}'],
      ['no Code at all', 200, '{"Message":"success","RequestId":"r1"}'],
      ['Code null', 200, '{"Code":null,"RequestId":"r1"}'],
      ['a fractional Code', 200, '{"Code":0.5,"RequestId":"r1"}'],
      ['a JSON array', 200, '[{"Code":0}]'],
      ['JSON null', 200, 'null'],
      ['an empty body', 200, ''],
      ['a redirect', 302, ''],
      ['HTTP 404 with a success body', 404, '{"Code":0,"RequestId":"r1"}'],
    ])('%s: 502', async (_name, status, body) => {
      reply = { status, contentType: 'application/json', body };
      const res = await createRoom(stubGw);
      expectError(res, 502);
      expect(stubCalls).toBe(1);
    });

    it('a stub answer with Code 0 is a success (the stub itself works)', async () => {
      reply = { status: 200, contentType: 'application/json', body: '{"Code":0,"RequestId":"stub-r1","AttributeSeq":0}' };
      const res = await createRoom(stubGw, { roomId: 'stub-room' });
      expect(res.status).toBe(201);
      expect(res.json).toEqual({ roomId: 'stub-room', attributeSeq: 0, zegoRequestId: 'stub-r1' });
      expect(stubCalls).toBe(1);
    });
  });
});

describe('connection resets', () => {
  it('a reset once, then a normal answer: retried, 201 after two calls', async () => {
    fake.injectFault({ kind: 'reset', times: 1 });
    const roomId = newRoomId();
    const res = await createRoom(gw, { roomId });
    expect(res.status).toBe(201);
    expect(res.json).toEqual({ roomId, attributeSeq: 0, zegoRequestId: expect.any(String) });
    expect(fake.calls.map((c) => c.fault)).toEqual(['reset', null]);
    expect(fake.calls.map((c) => c.code)).toEqual([null, 0]);
    expectRetriesOfOneRequest(fake.calls);
    expect(fake.createdRooms).toEqual([roomId]);
  });

  it('a reset after the vendor created the room: the retry finds it, 201 with recovered: true', async () => {
    fake.injectFault({ kind: 'resetAfterCreate', times: 1 });
    const roomId = newRoomId();
    const res = await createRoom(gw, { roomId });
    expect(res.status).toBe(201);
    expect(res.json).toEqual({ roomId, attributeSeq: 0, zegoRequestId: expect.any(String), recovered: true });
    expect(fake.calls.map((c) => c.code)).toEqual([0, 660300014]);
    expectRetriesOfOneRequest(fake.calls);
    expect(fake.createdRooms).toEqual([roomId]);
  });

  it('resets persisting: 502 after exactly ZEGO_MAX_ATTEMPTS calls', async () => {
    fake.injectFault({ kind: 'reset' });
    const res = await createRoom(gw);
    expectError(res, 502);
    expect(fake.calls.map((c) => c.fault)).toEqual(Array(MAX_ATTEMPTS).fill('reset'));
    expect(fake.createdRooms).toEqual([]);
  });
});

describe('vendor unreachable (ZEGO_API_BASE_URL at a closed port)', () => {
  const unreachable = s.gatewayBeforeAll(async () => ({ ZEGO_API_BASE_URL: `http://127.0.0.1:${await closedPort()}` }));

  it('502 without zego fields, after retrying the refused connection', async () => {
    const mark = unreachable.logMark();
    const res = await createRoom(unreachable);
    expectError(res, 502);
    // Connection refused is retryable: the attempts before the last one were logged as retried.
    await unreachable.waitForLog((l) => /attempt 2 failed/.test(message(l)), { since: mark });
    expect(
      unreachable
        .logLines()
        .slice(mark)
        .filter((l) => /attempt \d+ failed/.test(message(l))),
    ).toHaveLength(MAX_ATTEMPTS - 1);
  });
});

describe('vendor hangs (ZEGO_TIMEOUT_MS=500)', () => {
  const impatient = s.gatewayBeforeAll({ ZEGO_TIMEOUT_MS: '500' });

  it('504, exactly one vendor call (an ambiguous timeout is not retried)', async () => {
    // Only the first call hangs: a retry would be answered and turn this into a 201.
    fake.injectFault({ kind: 'hang', times: 1 });
    const res = await createRoom(impatient);
    expectError(res, 504);
    expect(res.headers['retry-after']).toBeUndefined();
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]!.fault).toBe('hang');
  });

  it('the same gateway answers normally once the vendor does', async () => {
    const res = await createRoom(impatient);
    expect(res.status).toBe(201);
    expect(fake.calls.map((c) => c.code)).toEqual([0]);
  });
});

// Runs last: it scans everything the describes above collected.
describe('secrets', () => {
  it('no response (body or header) and no gateway output ever carries a secret or the API key', () => {
    expect(http.exchanges.length).toBeGreaterThan(30);
    const haystacks = { responses: http.transcript(), ...gatewayOutputs(s.gateways) };
    const needles = { ZEGO_SERVER_SECRET: SECRET, 'the wrong ZEGO_SERVER_SECRET': WRONG_SECRET, 'API key': KEY };
    expect(findLeaks(haystacks, needles)).toEqual([]);
  });
});
