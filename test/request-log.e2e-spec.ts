/**
 * End to end, against the real built gateway: the request log. One JSON line per request with
 * requestId, clientId, roomId, status, durationMs and the vendor's code and RequestId; levels by
 * status; probes and scrapes only at debug; LOG_LEVEL honoured; no key or secret ever printed.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import type { GatewayProcess, LogLine } from './support/gateway-process.js';
import { HttpRecorder, type RecordedExchange } from './support/http-recorder.js';
import { scenario } from './support/scenario.js';
import { findLeaks, gatewayOutputs } from './support/secret-scan.js';

const APP_ID = 2718281828;
const SECRET = 'SENTINEL-secret-reqlog-7c1e9a05d3b28f64';
const KEY = 'sk-SENTINEL-reqlog-4e8a1c7f0b29d6e3';
const WRONG_KEY = 'sk-SENTINEL-wrong-reqlog-93b0f7e2a1c64d58';
const CLIENT_ID = 'svc-reqlog';
const START_TIMEOUT = 30_000;

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { [CLIENT_ID]: KEY },
  env: {
    // These suites fire requests back to back; quotas have their own suite.
    CLIENT_RATE_LIMIT: '100000',
    ZEGO_DEFAULT_FROM_USER_ID: 'ops-default',
    ZEGO_MAX_ATTEMPTS: '1',
    // Each refusal's own line is what these tests read (sampling has test/refusal-log.e2e-spec.ts).
    LOG_REFUSALS: 'all',
  },
});
const { fake } = s;
const gw = s.gatewayBeforeAll();
const http = new HttpRecorder();

let roomCounter = 0;
const newRoomId = (): string => `reqlog-${++roomCounter}`;
let requestCounter = 0;
const newRequestId = (): string => `reqlog-req-${++requestCounter}`;

function createRoom(
  gateway: GatewayProcess,
  requestId: string,
  options: { roomId?: string; authorization?: string | null } = {},
): Promise<RecordedExchange> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', 'X-Request-Id': requestId };
  if (options.authorization !== null) headers.Authorization = options.authorization ?? `Bearer ${KEY}`;
  return http.request(`${gateway.url}/rooms?trace=SENTINEL-query-value`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ roomId: options.roomId ?? newRoomId(), roomName: 'SENTINEL-room-name' }),
  });
}

const isRequestLine = (line: LogLine): boolean => line.context === 'RequestLog';

/** The one request line of this request id (waits for it; fails on a second one). */
async function requestLine(gateway: GatewayProcess, requestId: string): Promise<LogLine> {
  const line = await gateway.waitForLog((l) => isRequestLine(l) && l.requestId === requestId);
  expect(gateway.logLines().filter((l) => isRequestLine(l) && l.requestId === requestId)).toHaveLength(1);
  return line;
}

beforeEach(() => fake.reset());

describe('request log line', () => {
  it('201: requestId, method, path, status, durationMs, clientId, roomId, zegoCode 0, zegoRequestId', async () => {
    const requestId = newRequestId();
    const roomId = newRoomId();
    const res = await createRoom(gw, requestId, { roomId });
    expect(res.status).toBe(201);
    const line = await requestLine(gw, requestId);
    expect(line).toEqual(
      expect.objectContaining({
        level: 'info',
        pid: gw.pid,
        timestamp: expect.any(Number),
        message: expect.stringMatching(/^POST \/rooms 201 [\d.]+ ms$/),
        requestId,
        method: 'POST',
        path: '/rooms',
        status: 201,
        durationMs: expect.any(Number),
        clientId: CLIENT_ID,
        roomId,
        zegoCode: 0,
        zegoRequestId: (res.json as { zegoRequestId: string }).zegoRequestId,
        vendorAttempts: 1,
        limiterWaitMs: expect.any(Number),
      }),
    );
    expect(line.durationMs as number).toBeGreaterThanOrEqual(0);
    // Nothing of the body but roomId, and no query string.
    expect(line.raw).not.toContain('SENTINEL-room-name');
    expect(line.raw).not.toContain('SENTINEL-query-value');
  });

  it('401 without a key: warn, no clientId, no vendor fields', async () => {
    const requestId = newRequestId();
    const res = await createRoom(gw, requestId, { authorization: null });
    expect(res.status).toBe(401);
    const line = await requestLine(gw, requestId);
    expect(line).toEqual(expect.objectContaining({ level: 'warn', status: 401, method: 'POST', path: '/rooms' }));
    for (const field of ['clientId', 'zegoCode', 'zegoRequestId', 'vendorAttempts']) {
      expect(line).not.toHaveProperty(field);
    }
    expect(fake.calls).toHaveLength(0);
  });

  it('401 with a wrong key: the key appears nowhere in the line', async () => {
    const requestId = newRequestId();
    const res = await createRoom(gw, requestId, { authorization: `Bearer ${WRONG_KEY}` });
    expect(res.status).toBe(401);
    const line = await requestLine(gw, requestId);
    expect(line).not.toHaveProperty('clientId');
    expect(line.raw).not.toContain(WRONG_KEY);
    expect(line.raw).not.toMatch(/authorization|bearer/i);
  });

  it('vendor refusal (660300014 room exists): warn, with the vendor code and RequestId', async () => {
    const roomId = newRoomId();
    expect((await createRoom(gw, newRequestId(), { roomId })).status).toBe(201);
    const requestId = newRequestId();
    const res = await createRoom(gw, requestId, { roomId });
    expect(res.status).toBe(409);
    const line = await requestLine(gw, requestId);
    expect(line).toEqual(
      expect.objectContaining({
        level: 'warn',
        status: 409,
        clientId: CLIENT_ID,
        roomId,
        zegoCode: 660300014,
        zegoRequestId: (res.json as { zegoRequestId: string }).zegoRequestId,
      }),
    );
  });

  it('vendor 5xx (660300015 room quota): error level, with the vendor code', async () => {
    fake.injectFault({ kind: 'code', code: 660300015, times: 1 });
    const requestId = newRequestId();
    const res = await createRoom(gw, requestId);
    expect(res.status).toBe(503);
    const line = await requestLine(gw, requestId);
    expect(line).toEqual(expect.objectContaining({ level: 'error', status: 503, zegoCode: 660300015 }));
  });

  it('vendor answered without a code (HTTP 500): error level, no zegoCode, the outcome named', async () => {
    fake.injectFault({ kind: 'http500', times: 1 });
    const requestId = newRequestId();
    const res = await createRoom(gw, requestId);
    expect(res.status).toBe(502);
    const line = await requestLine(gw, requestId);
    expect(line).toEqual(expect.objectContaining({ level: 'error', status: 502, vendorAttempts: 1, vendorOutcome: expect.any(String) }));
    expect(line).not.toHaveProperty('zegoCode');
  });

  it('unknown route: warn 404, path without the query string', async () => {
    const requestId = newRequestId();
    const res = await http.request(`${gw.url}/nowhere?api_key=${WRONG_KEY}`, { headers: { 'X-Request-Id': requestId } });
    expect(res.status).toBe(404);
    const line = await requestLine(gw, requestId);
    expect(line).toEqual(expect.objectContaining({ level: 'warn', status: 404, method: 'GET', path: '/nowhere' }));
  });

  it('GET /metrics is not logged at info', async () => {
    const requestId = newRequestId();
    const res = await http.request(`${gw.url}/metrics`, { headers: { 'X-Request-Id': requestId } });
    expect(res.status).toBe(200);
    // The next request's line proves the scrape's line would have been written by now.
    const next = newRequestId();
    await createRoom(gw, next, { authorization: null });
    await requestLine(gw, next);
    expect(gw.logLines().filter((l) => l.requestId === requestId)).toEqual([]);
  });
});

describe('LOG_LEVEL', () => {
  it('warn: no info lines (only the start-up announcement), warn request lines still written', async () => {
    const quiet = await s.startGateway({ LOG_LEVEL: 'warn' });
    const ok = newRequestId();
    expect((await createRoom(quiet, ok)).status).toBe(201);
    const refused = newRequestId();
    expect((await createRoom(quiet, refused, { authorization: null })).status).toBe(401);
    await requestLine(quiet, refused);
    const info = quiet.logLines().filter((l) => l.level === 'info' || l.level === 'debug' || l.level === 'trace');
    expect(info.map((l) => l.message)).toEqual([expect.stringMatching(/listening on port \d+/)]);
    expect(quiet.logLines().some((l) => l.requestId === ok)).toBe(false);
  }, START_TIMEOUT);

  it('debug: a GET /metrics scrape is written, at debug', async () => {
    const verbose = await s.startGateway({ LOG_LEVEL: 'debug' });
    const requestId = newRequestId();
    expect((await http.request(`${verbose.url}/metrics`, { headers: { 'X-Request-Id': requestId } })).status).toBe(200);
    const line = await requestLine(verbose, requestId);
    expect(line).toEqual(expect.objectContaining({ level: 'debug', status: 200, method: 'GET', path: '/metrics' }));
  }, START_TIMEOUT);
});

// Runs last: it scans everything the describes above collected.
describe('secrets', () => {
  it('no gateway output carries the secret, the API key, or a wrong key that was sent', () => {
    const haystacks = gatewayOutputs(s.gateways);
    const needles = { ZEGO_SERVER_SECRET: SECRET, 'API key': KEY, 'wrong API key': WRONG_KEY };
    expect(findLeaks(haystacks, needles)).toEqual([]);
    // Every output line is JSON with the harness's fields.
    for (const gateway of s.gateways) {
      for (const line of gateway.logLines()) {
        expect(line).toEqual(
          expect.objectContaining({ level: expect.any(String), message: expect.any(String), pid: gateway.pid, timestamp: expect.any(Number) }),
        );
      }
    }
  });
});
