/**
 * Hostile transport against the real built gateway (`node dist/main.js`): oversized and
 * compressed bodies, wrong content types, slow-loris senders (headers or body dribbled out) and a
 * flood of bad API keys. The gateway runs with low HTTP timeouts (HTTP_HEADERS_TIMEOUT_MS=1000,
 * HTTP_REQUEST_TIMEOUT_MS=2000) so that a slow sender is cut off quickly; the vendor is the fake
 * ZIM server, which records every call.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { scenario } from '../support/scenario.js';

const APP_ID = 1618033988;
const SECRET = 'hostile-secret-6b0e2d9f41c7a358';
const KEY = 'sk-hostile-2c8f5e1a9d7b4036';
const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
/** Node checks the timeouts on a timer (a quarter of the headers timeout here), plus slack for a busy CI box. */
const CUT_OFF_SLACK_MS = 1500;

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET, qpsLimit: 100_000 },
  apiKeys: { hostile: KEY },
  env: {
    ZEGO_DEFAULT_FROM_USER_ID: 'ops-hostile',
    CLIENT_RATE_LIMIT: '100000',
    ZEGO_QPS_LIMIT: '10000',
    RATE_LIMIT_REPLICAS: '1',
    ZEGO_MAX_ATTEMPTS: '1',
    HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    LOG_LEVEL: 'error',
  },
});
const { fake } = s;
const gw = s.gatewayBeforeAll();
let roomCounter = 0;

beforeEach(() => fake.reset());

function post(body: RequestInit['body'], headers: Record<string, string> = {}, key = KEY): Promise<Response> {
  return fetch(`${gw.url}/rooms`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, ...headers },
    body,
  });
}

const validBody = (): string => JSON.stringify({ roomId: `hostile-${++roomCounter}` });

/**
 * A raw TCP client that sends `head` and then `drip` one piece at a time every `everyMs`, forever;
 * resolves when the server closes the connection, with what it answered and when.
 */
async function slowSender(head: string, drip: string, everyMs: number): Promise<{ ms: number; answer: string }> {
  const socket = net.connect(gw.port, '127.0.0.1');
  await once(socket, 'connect');
  const started = performance.now();
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    answer += chunk;
  });
  socket.on('error', () => undefined); // a reset is a cut-off too
  socket.write(head);
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(drip);
  }, everyMs);
  try {
    await once(socket, 'close');
  } finally {
    clearInterval(timer);
  }
  return { ms: performance.now() - started, answer };
}

describe('bodies and content types: refused before any vendor call', () => {
  it('413 for a body over 64 KiB (valid JSON)', async () => {
    const res = await post(JSON.stringify({ roomId: 'big', roomName: 'x'.repeat(70_000) }), {
      'Content-Type': 'application/json',
    });
    expect(res.status).toBe(413);
    await res.text();
    expect(fake.calls).toHaveLength(0);
  });

  it('413 for a chunked body over 64 KiB (no Content-Length)', async () => {
    const chunk = new TextEncoder().encode(' '.repeat(16 * 1024));
    let sentChunks = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sentChunks++ < 6) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await fetch(`${gw.url}/rooms`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit & { duplex: 'half' });
    expect(res.status).toBe(413);
    await res.text();
    expect(fake.calls).toHaveLength(0);
  });

  it.each([
    ['no Content-Type', undefined],
    ['text/plain', 'text/plain'],
    ['form encoding', 'application/x-www-form-urlencoded'],
    ['a look-alike', 'application/jsonx'],
    ['multipart', 'multipart/form-data; boundary=x'],
  ])('415 for %s', async (_label, contentType) => {
    // A Uint8Array body makes fetch send no Content-Type of its own.
    const body = new TextEncoder().encode(validBody());
    const res = await post(body, contentType === undefined ? {} : { 'Content-Type': contentType });
    expect(res.status).toBe(415);
    await res.text();
    expect(fake.calls).toHaveLength(0);
  });

  it('415 for a gzip body, which is never inflated (a small gzip of a huge body)', async () => {
    // 10 MB of JSON whitespace compresses to about 10 KB: inflating it would blow the 64 KiB limit.
    const bomb = gzipSync(Buffer.from(`${' '.repeat(10_000_000)}${validBody()}`));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const res = await post(bomb, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
    expect(res.status).toBe(415);
    await res.text();
    expect(fake.calls).toHaveLength(0);
  });
});

describe('slow senders are cut off by the server; others are still served', () => {
  it(`headers dribbled out: 408 and closed within HTTP_HEADERS_TIMEOUT_MS (${HEADERS_TIMEOUT_MS} ms)`, async () => {
    const slow = slowSender(`POST /rooms HTTP/1.1\r\nHost: gateway\r\n`, 'X-Slow: 1\r\n', 200);
    // While the slow client holds its socket, a normal request is served.
    const res = await post(validBody(), { 'Content-Type': 'application/json' });
    expect(res.status).toBe(201);
    const { ms, answer } = await slow;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(HEADERS_TIMEOUT_MS + CUT_OFF_SLACK_MS);
  }, 15_000);

  it(`a body dribbled out: 408 and closed within HTTP_REQUEST_TIMEOUT_MS (${REQUEST_TIMEOUT_MS} ms)`, async () => {
    const head =
      `POST /rooms HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${KEY}\r\n` +
      'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"roomId":"slow-body"';
    const slow = slowSender(head, ' ', 200);
    const res = await post(validBody(), { 'Content-Type': 'application/json' });
    expect(res.status).toBe(201);
    const { ms, answer } = await slow;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(REQUEST_TIMEOUT_MS + CUT_OFF_SLACK_MS);
    expect(fake.calls.map((c) => (c.body as { RoomId?: string }).RoomId)).not.toContain('slow-body');
  }, 15_000);

  it('a connection that sends one byte and then nothing is closed too', async () => {
    // Node times out a request from its first byte; an idle socket falls to keepAliveTimeout
    // (65 s) instead, so here one byte starts the request and nothing follows.
    const { ms } = await slowSender('P', '', 60_000);
    expect(ms).toBeLessThan(HEADERS_TIMEOUT_MS + CUT_OFF_SLACK_MS);
  }, 15_000);

  it('HTTP_REQUEST_TIMEOUT_MS covers receiving only: a vendor call slower than it still answers 201', async () => {
    fake.injectFault({ kind: 'delay', delayMs: REQUEST_TIMEOUT_MS + 800, times: 1 });
    const started = performance.now();
    const res = await post(validBody(), { 'Content-Type': 'application/json' });
    expect(res.status).toBe(201);
    expect(performance.now() - started).toBeGreaterThan(REQUEST_TIMEOUT_MS);
    expect(fake.calls).toHaveLength(1);
  }, 15_000);
});

describe('a flood of bad API keys', () => {
  it('3000 requests with wrong or malformed keys: every one 401, the vendor never called', async () => {
    const total = 3000;
    const concurrency = 16;
    const keys = (i: number): Record<string, string> => {
      switch (i % 5) {
        case 0:
          return { Authorization: `Bearer ${KEY.slice(0, -1)}x` }; // one character off
        case 1:
          return { Authorization: `Bearer ${'k'.repeat(4096)}` };
        case 2:
          return { Authorization: `Basic ${Buffer.from(`hostile:${KEY}`).toString('base64')}` };
        case 3:
          return { Authorization: 'Bearer' };
        default:
          return {};
      }
    };
    const statuses = new Map<number, number>();
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          const i = next++;
          const res = await fetch(`${gw.url}/rooms`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', ...keys(i) },
            body: validBody(),
          });
          await res.arrayBuffer();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    // Printed, not asserted: throughput depends on the machine.
    process.stdout.write(
      `bad-key flood: ${total} requests in ${seconds.toFixed(2)} s, ${Math.round(total / seconds)} req/s (concurrency ${concurrency})\n`,
    );
    expect(Object.fromEntries(statuses)).toEqual({ 401: total });
    expect(fake.calls).toHaveLength(0);
    // And the gateway still serves a good key afterwards.
    const ok = await post(validBody(), { 'Content-Type': 'application/json' });
    expect(ok.status).toBe(201);
  }, 60_000);
});
