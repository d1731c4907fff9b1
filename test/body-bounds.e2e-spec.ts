/**
 * End to end, against the real built gateway: bodies outside the vendor's shape are refused
 * before validation, cheaply and with a short answer (keys per object, keys in all, the route's
 * own limits); invalid UTF-8 is a 400 naming the field; a request without a key gets its 401
 * without the gateway waiting for its body, and its log line carries nothing of the body.
 */
import { once } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { expectErrorBody } from './support/error-body.js';
import { HttpRecorder, type RecordedExchange } from './support/http-recorder.js';
import { scenario } from './support/scenario.js';

const APP_ID = 1414213562;
const SECRET = 'SENTINEL-secret-bounds-4d1c8e7a90b2f365';
const KEY = 'sk-SENTINEL-bounds-9e27c4b1f0a8d653';
const REQUEST_TIMEOUT_MS = 20_000;
/** BATCH_MAX_ROOMS here: POST /rooms/batches then takes twice 2 + 100 rooms of 86 keys. */
const BATCH_MAX_ROOMS = 100;
const BATCH_TOTAL_KEYS = 2 * (2 + BATCH_MAX_ROOMS * 86);

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET, qpsLimit: 100_000 },
  apiKeys: { 'svc-bounds': KEY },
  env: {
    CLIENT_RATE_LIMIT: '100000',
    ZEGO_DEFAULT_FROM_USER_ID: 'ops-bounds',
    ZEGO_MAX_ATTEMPTS: '1',
    BATCH_MAX_ROOMS: String(BATCH_MAX_ROOMS),
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    // Every request line, not one per kind of refusal per second: a test below reads a 401's line.
    LOG_REFUSALS: 'all',
  },
});
const { fake } = s;
const gw = s.gatewayBeforeAll();
const http = new HttpRecorder();
let counter = 0;
const newRoomId = (): string => `bounds-${++counter}`;

beforeEach(() => fake.reset());

function post(path: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<RecordedExchange> {
  return http.request(`${gw.url}${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', ...headers },
    body,
  });
}

const fieldErrors = (res: RecordedExchange): unknown => (expectErrorBody(res, 400, { messageNotEmpty: true }) as { errors?: unknown }).errors;

/** `{"aaa":0,"aab":0,…}` with `count` short keys: about 8 bytes a key. */
function unknownKeys(count: number): string {
  return `{${Array.from({ length: count }, (_, i) => `"${i.toString(36).padStart(3, 'a')}":0`).join(',')}}`;
}

const bytes = (...parts: Array<string | number[]>): Buffer =>
  Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'utf8') : Buffer.from(part))));

describe('bodies outside the shape: a 400 naming where, before validation, the vendor never called', () => {
  it('an object of 8,000 unknown keys (64 KB) is refused at its 33rd key, in an answer of a few hundred bytes', async () => {
    const body = unknownKeys(8_000);
    expect(Buffer.byteLength(body)).toBeLessThan(64 * 1024);
    const res = await post('/rooms', body);
    expect(fieldErrors(res)).toEqual([{ field: 'body', reason: 'must not have more than 32 keys' }]);
    expect(res.text.length).toBeLessThan(1024);
    expect(fake.calls).toHaveLength(0);
  });

  it('names the object that is too wide: attributes[1]', async () => {
    const res = await post('/rooms', `{"roomId":"${newRoomId()}","attributes":[{"key":"k","value":"v"},${unknownKeys(40)}]}`);
    expect(fieldErrors(res)).toEqual([{ field: 'attributes[1]', reason: 'must not have more than 32 keys' }]);
  });

  it('50,000 keys and items in a batch body, within its byte limit: refused for the keys in all, not with a 413', async () => {
    const body = JSON.stringify({ rooms: Array.from({ length: 25_000 }, () => ({ a: 0 })) });
    expect(Buffer.byteLength(body)).toBeGreaterThan(64 * 1024); // over the default limit: the route's own applies
    const res = await post('/rooms/batches', body);
    expect(fieldErrors(res)).toEqual([{ field: 'body', reason: `must not have more than ${BATCH_TOTAL_KEYS} keys and array items in all` }]);
    expect(fake.calls).toHaveLength(0);
  });

  it('a batch body over 64 KiB, within its own limit, is read and validated room by room', async () => {
    const rooms = Array.from({ length: BATCH_MAX_ROOMS }, () => ({ roomId: newRoomId(), attributes: [{ key: 'k', value: 'v'.repeat(1000) }] }));
    rooms[BATCH_MAX_ROOMS - 1]!.roomId = 'bad/room';
    const body = JSON.stringify({ rooms });
    expect(Buffer.byteLength(body)).toBeGreaterThan(64 * 1024);
    expect(fieldErrors(await post('/rooms/batches', body))).toEqual([{ field: `rooms[${BATCH_MAX_ROOMS - 1}].roomId`, reason: expect.any(String) }]);
  });

  it('more than 20 offending fields: the first 20 listed, the rest counted in moreErrors and the message', async () => {
    const body = JSON.parse(unknownKeys(31)) as Record<string, unknown>;
    const res = await post('/rooms', JSON.stringify({ roomId: newRoomId(), ...body }));
    const errors = fieldErrors(res) as Array<{ field: string }>;
    expect(errors).toHaveLength(20);
    expect((res.json as { message: string }).message).toMatch(/; … and 11 more$/);
    expect((res.json as { moreErrors: number }).moreErrors).toBe(11);
    expect(fake.calls).toHaveLength(0);
  });
});

describe('a refused body sent again (a retry loop): the same 400, from the refusal remembered', () => {
  it('answers each repeat as validation did the first time, and a changed body on its own merits', async () => {
    const refused = JSON.stringify({ roomId: '', roomName: 5 });
    const first = fieldErrors(await post('/rooms', refused));
    expect(first).toEqual([
      { field: 'roomId', reason: expect.any(String) },
      { field: 'roomName', reason: expect.any(String) },
    ]);
    for (let i = 0; i < 3; i++) expect(fieldErrors(await post('/rooms', refused))).toEqual(first);

    // The same bytes on the batch route are that route's business: its own fields are missing.
    expect(fieldErrors(await post('/rooms/batches', refused))).toEqual(
      expect.arrayContaining([expect.objectContaining({ field: 'rooms' })]),
    );
    // The corrected body is validated afresh.
    const roomId = newRoomId();
    const created = await post('/rooms', JSON.stringify({ roomId, roomName: 'five' }));
    expect(created.status).toBe(201);
    expect(fake.createdRooms).toEqual([roomId]);
  });

  it('a valid body refused for its Idempotency-Key header is not remembered: sent again without it, it is created', async () => {
    const roomId = newRoomId();
    const body = JSON.stringify({ roomId, roomName: 'header at fault' });
    expect(fieldErrors(await post('/rooms', body, { 'Idempotency-Key': 'x'.repeat(256) }))).toEqual([
      { field: 'Idempotency-Key', reason: expect.any(String) },
    ]);
    expect((await post('/rooms', body)).status).toBe(201);
    expect(fake.createdRooms).toEqual([roomId]);
  });
});

describe('invalid UTF-8: a 400 naming the field, never sent on', () => {
  it.each([
    ['roomName', bytes('{"roomId":"r-utf8","roomName":"a', [0xc3, 0x28, 0xff], '"}')],
    ['attributes[0].key', bytes('{"roomId":"r-utf8","attributes":[{"key":"', [0xff], '","value":"v"}]}')],
  ])('names %s', async (field, body) => {
    const res = await post('/rooms', body);
    expect(fieldErrors(res)).toEqual([{ field, reason: 'must be valid UTF-8' }]);
    expect(fake.calls).toHaveLength(0);
  });

  it('takes a valid U+FFFD as the character it is', async () => {
    const res = await post('/rooms', JSON.stringify({ roomId: newRoomId(), roomName: 'replacement \uFFFD character' }));
    expect(res.status).toBe(201);
    expect((fake.calls[0]!.body as { RoomName?: string }).RoomName).toBe('replacement \uFFFD character');
  });
});

/** A raw HTTP/1.1 exchange: sends `request`, collects what comes back, and tells when the server closes. */
function rawExchange(request: string): { socket: net.Socket; answer: () => string; closed: Promise<number> } {
  const socket = net.connect(gw.port, '127.0.0.1');
  const started = performance.now();
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    answer += chunk;
  });
  socket.on('error', () => undefined);
  socket.write(request);
  // A reset after the answer is a close too (events.once would reject on the 'error' before it).
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - started)));
  return { socket, answer: () => answer, closed };
}

/** Resolves once a whole JSON answer has come (its body ends the data so far), or fails naming `what`. */
function answered(exchange: ReturnType<typeof rawExchange>, what: string): Promise<void> {
  return within(
    (async () => {
      while (!exchange.answer().endsWith('}')) await once(exchange.socket, 'data');
    })(),
    5_000,
    what,
  );
}

/** Resolves with `promise`, or fails naming `what` once `ms` have passed. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

describe('no key: 401 without waiting for the body', () => {
  const roomId = 'SENTINEL-room-of-a-401';
  const head = (requestId: string, contentLength: number): string =>
    `POST /rooms HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nX-Request-Id: ${requestId}\r\n` +
    `Content-Length: ${contentLength}\r\n\r\n`;

  it(`a body that never completes: 401 and the connection closed well before HTTP_REQUEST_TIMEOUT_MS (${REQUEST_TIMEOUT_MS} ms)`, async () => {
    const start = `{"roomId":"${roomId}","roomName":"`;
    const exchange = rawExchange(`${head('bounds-401-slow', 1_000_000)}${start}`);
    const closedAfterMs = await within(exchange.closed, REQUEST_TIMEOUT_MS / 4, 'the connection closed');
    expect(exchange.answer()).toMatch(/^HTTP\/1\.1 401 /);
    expect(closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS / 4);
  });

  it('a whole request refused before its body was read (401) keeps its connection for the next request', async () => {
    const body = `{"roomId":"${roomId}"}`;
    const exchange = rawExchange(`${head('bounds-401-whole', body.length)}${body}`);
    await answered(exchange, 'the 401');
    expect(exchange.answer()).toMatch(/^HTTP\/1\.1 401 /);
    expect(exchange.answer()).not.toMatch(/\r\nconnection: close\r\n/i);
    exchange.socket.write('GET /health/live HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n');
    await within(exchange.closed, 5_000, 'the second answer on the same connection');
    expect(exchange.answer()).toMatch(/\}HTTP\/1\.1 200 /);
  });

  it(`with a key, a body announced over the limit that never comes: 413 at once, the connection closed well before HTTP_REQUEST_TIMEOUT_MS`, async () => {
    const exchange = rawExchange(
      `POST /rooms HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\n` +
        `Content-Length: 10000000\r\n\r\n{"roomId":"`,
    );
    await answered(exchange, 'the 413, before the body');
    expect(exchange.answer()).toMatch(/^HTTP\/1\.1 413 /);
    const closedAfterMs = await within(exchange.closed, REQUEST_TIMEOUT_MS / 4, 'the connection closed');
    expect(closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS / 4);
  });

  it('with a key, a body announced over the limit and sent whole (10 MB): the client reads its 413, never a reset', async () => {
    // A connection closed under a client still writing its body is reset: it sees EPIPE or
    // ECONNRESET instead of the answer. Each try below would fail that way more often than not.
    const body = Buffer.alloc(10_000_000, 'a');
    for (let i = 0; i < 5; i++) expect((await post('/rooms', body)).status).toBe(413);
  });

  it('a body the gateway did read keeps the connection open for the next request', async () => {
    const body = '{"roomId":';
    const exchange = rawExchange(
      `POST /rooms HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\n\r\n${body}`,
    );
    await answered(exchange, 'the 400 for the malformed body');
    expect(exchange.answer()).toMatch(/^HTTP\/1\.1 400 /);
    expect(exchange.answer()).not.toMatch(/\r\nconnection: close\r\n/i);
    exchange.socket.write('GET /health/live HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n');
    await within(exchange.closed, 5_000, 'the second answer on the same connection');
    expect(exchange.answer()).toMatch(/\}HTTP\/1\.1 200 /);
  });

  it("the 401's log line carries nothing of the body", async () => {
    const requestId = 'bounds-401-logged';
    const res = await http.request(`${gw.url}/rooms`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': requestId },
      body: JSON.stringify({ roomId, roomName: 'SENTINEL-name-of-a-401' }),
    });
    expect(res.status).toBe(401);
    const line = await gw.waitForLog((l) => l.context === 'RequestLog' && l.requestId === requestId);
    expect(line).toEqual(expect.objectContaining({ status: 401, path: '/rooms' }));
    expect(line).not.toHaveProperty('roomId');
    expect(line.raw).not.toContain('SENTINEL-');
  });
});

describe('with a key, a chunked body that passes the limit: 413 as it passes', () => {
  const chunk = (text: string): string => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
  const chunkedHead =
    `POST /rooms HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\n` +
    `Transfer-Encoding: chunked\r\n\r\n${chunk('{"roomId":"r1","roomName":"')}`;
  /** 512 KiB of roomName: eight times the 64 KiB limit, more than Node buffers for a paused request. */
  const overLimit = Array.from({ length: 32 }, () => chunk('a'.repeat(16 * 1024))).join('');

  it('a whole body sent with it: the rest is dropped and the connection serves the next request', async () => {
    const exchange = rawExchange(`${chunkedHead}${overLimit}`);
    await answered(exchange, 'the 413');
    expect(exchange.answer()).toMatch(/^HTTP\/1\.1 413 /);
    expect(exchange.answer()).not.toMatch(/\r\nconnection: close\r\n/i);
    // What a client that had written its whole body when the 413 came does next: reuse the connection.
    exchange.socket.write(`${chunk('"}')}0\r\n\r\nGET /health/live HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n`);
    await within(exchange.closed, 5_000, 'the second answer on the same connection');
    expect(exchange.answer()).toMatch(/\}HTTP\/1\.1 200 /);
  });

  it(`a body that never ends: the connection closed well before HTTP_REQUEST_TIMEOUT_MS (${REQUEST_TIMEOUT_MS} ms)`, async () => {
    const exchange = rawExchange(`${chunkedHead}${overLimit}`);
    const closedAfterMs = await within(exchange.closed, REQUEST_TIMEOUT_MS / 4, 'the connection closed');
    expect(exchange.answer()).toMatch(/^HTTP\/1\.1 413 /);
    expect(closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS / 4);
  });
});
