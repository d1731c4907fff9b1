import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net, { type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ConnectionOptions } from 'node:tls';
import { waitFor } from '../support/async-probes.js';
import { maxCallsInAnyWindow } from '../support/call-windows.js';
import { createTestCertificate, type TestCertificate } from '../support/test-certificate.js';
import {
  FakeZimServer,
  zimSignature,
  type FakeZimOptions,
  type FaultSpec,
  type ReceivedCall,
} from './fake-zim-server.js';

const APP_ID = 12345;
const SECRET = '9193cc662a4c0ec135ec71fb57194b38';

type PublicParam = 'Action' | 'AppId' | 'SignatureNonce' | 'Timestamp' | 'SignatureVersion' | 'Signature';

interface CallOptions {
  appId?: string;
  nonce?: string;
  timestamp?: string;
  secret?: string;
  /** Replaces a public parameter after signing; null leaves it out. */
  override?: Partial<Record<PublicParam, string | null>>;
  body?: unknown;
  /** Sent as is instead of JSON.stringify(body). */
  rawBody?: string;
  signal?: AbortSignal;
}

interface ZimJson {
  Code: number;
  Message: string;
  RequestId: string;
  AttributeSeq?: number;
}

const nowSec = (): number => Math.floor(Date.now() / 1000);
const newNonce = (): string => randomBytes(8).toString('hex');
let roomCounter = 0;
const newRoomId = (): string => `room-${++roomCounter}`;

function vendorUrl(baseUrl: string, opts: CallOptions = {}): string {
  const appId = opts.appId ?? String(APP_ID);
  const nonce = opts.nonce ?? newNonce();
  const timestamp = opts.timestamp ?? String(nowSec());
  const params: Record<PublicParam, string | null> = {
    Action: 'CreateRoom',
    AppId: appId,
    SignatureNonce: nonce,
    Timestamp: timestamp,
    SignatureVersion: '2.0',
    Signature: zimSignature(appId, nonce, opts.secret ?? SECRET, timestamp),
    ...opts.override,
  };
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== null) query.set(key, value);
  return `${baseUrl}/?${query.toString()}`;
}

function post(baseUrl: string, opts: CallOptions = {}): Promise<Response> {
  const body = opts.rawBody ?? JSON.stringify(opts.body ?? { FromUserId: 'alice', RoomId: newRoomId() });
  return fetch(vendorUrl(baseUrl, opts), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body,
    signal: opts.signal,
  });
}

async function call(baseUrl: string, opts: CallOptions = {}): Promise<ZimJson> {
  const res = await post(baseUrl, opts);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return (await res.json()) as ZimJson;
}

/** Servers started by a single test; stopped after it. */
const extraServers: FakeZimServer[] = [];
async function startServer(options: Partial<FakeZimOptions> = {}): Promise<FakeZimServer> {
  const server = new FakeZimServer({ appId: APP_ID, serverSecret: SECRET, ...options });
  extraServers.push(server);
  await server.start();
  return server;
}

/** Agents made by a single test; destroyed after it. */
const agents: Array<http.Agent | https.Agent> = [];
function keepAliveAgent(): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  return agent;
}

/** Node's timers may fire up to 1 ms before their delay by performance.now(). */
const TIMER_SLACK_MS = 2;

interface NodeRequestInit {
  method?: string;
  body?: string;
  /** Which connection to use: an agent that keeps one, or false for a fresh one. */
  agent?: http.Agent | false;
  /** HTTPS: the certificate to trust, and a TLS session to resume. */
  ca?: string;
  session?: Buffer;
}

interface NodeExchange {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The latest TLS session the server sent on this connection (HTTPS only). */
  tlsSession(): Buffer | undefined;
}

/** One request through node:http(s), where fetch would hide the connection and the TLS session. */
function nodeRequest(url: string, init: NodeRequestInit = {}): Promise<NodeExchange> {
  const options: https.RequestOptions & Pick<ConnectionOptions, 'session'> = {
    method: init.method ?? 'GET',
    agent: init.agent,
    ca: init.ca,
    session: init.session,
    headers: init.body === undefined ? {} : { 'Content-Type': 'application/json' },
  };
  return new Promise((resolve, reject) => {
    let tlsSession: Buffer | undefined;
    const onResponse = (response: http.IncomingMessage): void => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, text, tlsSession: () => tlsSession }),
      );
    };
    const request = url.startsWith('https:')
      ? https.request(url, options, onResponse)
      : http.request(url, options, onResponse);
    request.on('socket', (socket: Socket) => socket.on('session', (session: Buffer) => (tlsSession = session)));
    request.on('error', reject);
    request.end(init.body);
  });
}

/** A signed CreateRoom through node:http(s). */
function nodeCall(baseUrl: string, init: NodeRequestInit = {}, opts: CallOptions = {}): Promise<NodeExchange> {
  const body = JSON.stringify(opts.body ?? { FromUserId: 'alice', RoomId: newRoomId() });
  return nodeRequest(vendorUrl(baseUrl, opts), { method: 'POST', body, ...init });
}

interface IdleConnection {
  /** The raw HTTP answer to the one request. */
  response: string;
  /** performance.now() just before the request was written. */
  sentAt: number;
  /** performance.now() when the socket closed; undefined while open. */
  closedAt(): number | undefined;
  /** True once the server ended the connection (its FIN came). */
  endedByServer(): boolean;
}

/**
 * A TCP connection of the test's own that sends one GET /_fake/health, reads the answer and then
 * stays idle: no agent that could close it first (Node's closes sockets announced as `timeout=0`
 * or `timeout=1` itself), so only the server can end it.
 */
function idleAfterOneRequest(server: FakeZimServer): Promise<IdleConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, '127.0.0.1');
    let received = '';
    let sentAt = 0;
    let closedAt: number | undefined;
    let ended = false;
    let answered = false;
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      sentAt = performance.now();
      socket.write('GET /_fake/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    });
    socket.on('data', (chunk: string) => {
      received += chunk;
      const headEnd = received.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: *(\d+)/i.exec(received);
      if (answered || headEnd === -1 || !length || received.length < headEnd + 4 + Number(length[1])) return;
      answered = true;
      resolve({ response: received, sentAt, closedAt: () => closedAt, endedByServer: () => ended });
    });
    socket.on('end', () => (ended = true));
    socket.on('close', () => {
      closedAt = performance.now();
      if (!answered) reject(new Error(`connection closed before the answer: ${JSON.stringify(received)}`));
    });
    socket.on('error', () => undefined); // 'close' follows and tells
  });
}

describe('FakeZimServer', () => {
  let fake: FakeZimServer;
  let base: string;

  beforeAll(async () => {
    fake = new FakeZimServer({ appId: APP_ID, serverSecret: SECRET, qpsLimit: 1000 });
    await fake.start();
    base = fake.url;
  });
  afterAll(async () => {
    await fake.stop();
  });
  beforeEach(() => fake.reset());
  afterEach(async () => {
    for (const agent of agents.splice(0)) agent.destroy();
    await Promise.all(extraServers.splice(0).map((s) => s.stop()));
  });

  describe('signature', () => {
    it('reproduces the vendor test vector', () => {
      const expected = '43e5cfcca828314675f91b001390566a';
      const viaCrypto = createHash('md5')
        .update('12345' + '4fd24687296dd9f3' + '9193cc662a4c0ec135ec71fb57194b38' + '1615186943')
        .digest('hex');
      expect(viaCrypto).toBe(expected);
      expect(zimSignature(12345, '4fd24687296dd9f3', SECRET, 1615186943)).toBe(expected);
    });

    it('accepts the exact vector on the wire when the timestamp window allows it', async () => {
      const server = await startServer({ timestampToleranceSec: 1e10 });
      const url =
        `${server.url}/?Action=CreateRoom&AppId=12345&SignatureNonce=4fd24687296dd9f3` +
        `&Timestamp=1615186943&SignatureVersion=2.0&Signature=43e5cfcca828314675f91b001390566a`;
      const res = await fetch(url, { method: 'POST', body: JSON.stringify({ FromUserId: 'u', RoomId: 'r' }) });
      expect(((await res.json()) as ZimJson).Code).toBe(0);
    });

    it('accepts a correctly signed call with the current timestamp and creates the room', async () => {
      const json = await call(base, {
        body: {
          FromUserId: 'alice',
          RoomId: 'r1',
          RoomName: 'Lobby',
          DestroyDelayTime: 60,
          Attributes: [
            { Key: 'a', Value: '1' },
            { Key: 'b', Value: '2', AutoDelete: 1 },
          ],
        },
      });
      expect(json).toEqual({ Code: 0, Message: 'success', RequestId: expect.any(String), AttributeSeq: 2 });
      expect(fake.createdRooms).toEqual(['r1']);
    });

    it('gives a fresh RequestId to every call', async () => {
      const ids = await Promise.all([1, 2, 3, 4, 5].map(async () => (await call(base)).RequestId));
      expect(new Set(ids).size).toBe(5);
    });
  });

  describe('public parameter checks', () => {
    const cases: Array<[string, CallOptions, number]> = [
      ['Action missing', { override: { Action: null } }, 100000006],
      ['Action empty', { override: { Action: '' } }, 100000006],
      ['Action unsupported', { override: { Action: 'DestroyRoom' } }, 100000007],
      ['AppId not a number', { appId: 'abc' }, 100000001],
      ['AppId over uint32', { appId: '4294967296' }, 100000001],
      ['AppId negative', { appId: '-1' }, 100000001],
      ['AppId unknown but well-formed', { appId: '54321' }, 3],
      ['Timestamp missing', { override: { Timestamp: null } }, 100000002],
      ['Timestamp not an integer', { timestamp: '1615186943.5' }, 100000003],
      ['Timestamp garbage', { timestamp: 'yesterday' }, 100000003],
      ['Timestamp 11 minutes old', { timestamp: String(nowSec() - 11 * 60) }, 100000004],
      ['Timestamp 11 minutes ahead', { timestamp: String(nowSec() + 11 * 60) }, 100000004],
      ['SignatureNonce missing', { override: { SignatureNonce: null } }, 100000008],
      ['SignatureNonce not hex', { nonce: 'zzzzzzzzzzzzzzzz' }, 2],
      ['SignatureNonce 15 chars', { nonce: '4fd24687296dd9f' }, 2],
      ['SignatureNonce 17 chars', { nonce: '4fd24687296dd9f31' }, 2],
      ['Signature missing', { override: { Signature: null } }, 100000009],
      ['SignatureVersion missing', { override: { SignatureVersion: null } }, 100000013],
      ['SignatureVersion 1.0', { override: { SignatureVersion: '1.0' } }, 100000014],
      ['wrong signature', { override: { Signature: '0'.repeat(32) } }, 100000005],
      ['signed with another secret', { secret: 'another-secret' }, 100000005],
      ['body not JSON', { rawBody: '{"FromUserId":' }, 100000012],
      ['empty body', { rawBody: '' }, 100000012],
      // Order: authentication errors win over the problems checked after them.
      ['Action beats AppId', { appId: 'abc', override: { Action: 'Nope' } }, 100000007],
      ['signature beats the body', { secret: 'x', rawBody: 'nope' }, 100000005],
    ];
    it.each(cases)('%s', async (_name, opts, code) => {
      expect((await call(base, opts)).Code).toBe(code);
      expect(fake.createdRooms).toEqual([]);
    });

    it('accepts a timestamp 9 minutes old', async () => {
      expect((await call(base, { timestamp: String(nowSec() - 9 * 60) })).Code).toBe(0);
    });

    it('accepts an uppercase nonce (signed as sent)', async () => {
      expect((await call(base, { nonce: '4FD24687296DD9F3' })).Code).toBe(0);
    });

    it('rejects an uppercase signature (the vendor signs lowercase hex)', async () => {
      const nonce = newNonce();
      const timestamp = String(nowSec());
      const upper = zimSignature(APP_ID, nonce, SECRET, timestamp).toUpperCase();
      expect((await call(base, { nonce, timestamp, override: { Signature: upper } })).Code).toBe(100000005);
    });
  });

  describe('body rules', () => {
    const tooMany = Array.from({ length: 21 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
    const big = Array.from({ length: 5 }, (_, i) => ({ Key: `${i}`.padEnd(16, 'k'), Value: 'v'.repeat(1024) }));
    const violations: Array<[string, unknown]> = [
      ['RoomId of 33 chars', { FromUserId: 'alice', RoomId: 'r'.repeat(33) }],
      ['RoomId with *', { FromUserId: 'alice', RoomId: 'a*b' }],
      ['RoomId empty', { FromUserId: 'alice', RoomId: '' }],
      ['RoomId a number', { FromUserId: 'alice', RoomId: 42 }],
      ['RoomId missing', { FromUserId: 'alice' }],
      ['FromUserId missing', { RoomId: 'r' }],
      ['FromUserId non-ASCII', { FromUserId: 'é', RoomId: 'r' }],
      ['RoomName of 66 bytes (22 three-byte chars)', { FromUserId: 'alice', RoomId: 'r', RoomName: '中'.repeat(22) }],
      ['RoomName null', { FromUserId: 'alice', RoomId: 'r', RoomName: null }],
      ['DestroyDelayTime 10801', { FromUserId: 'alice', RoomId: 'r', DestroyDelayTime: 10801 }],
      ['DestroyDelayTime -1', { FromUserId: 'alice', RoomId: 'r', DestroyDelayTime: -1 }],
      ['DestroyDelayTime 1.5', { FromUserId: 'alice', RoomId: 'r', DestroyDelayTime: 1.5 }],
      ['DestroyDelayTime as a string', { FromUserId: 'alice', RoomId: 'r', DestroyDelayTime: '60' }],
      ['Attributes not an array', { FromUserId: 'alice', RoomId: 'r', Attributes: { Key: 'a', Value: 'b' } }],
      ['21 attributes', { FromUserId: 'alice', RoomId: 'r', Attributes: tooMany }],
      ['attribute without Value', { FromUserId: 'alice', RoomId: 'r', Attributes: [{ Key: 'a' }] }],
      ['attribute with empty Key', { FromUserId: 'alice', RoomId: 'r', Attributes: [{ Key: '', Value: 'v' }] }],
      ['attribute Key of 17 bytes', { FromUserId: 'alice', RoomId: 'r', Attributes: [{ Key: 'k'.repeat(17), Value: 'v' }] }],
      ['attribute Value of 1025 bytes', { FromUserId: 'alice', RoomId: 'r', Attributes: [{ Key: 'k', Value: 'v'.repeat(1025) }] }],
      ['AutoDelete 2', { FromUserId: 'alice', RoomId: 'r', Attributes: [{ Key: 'k', Value: 'v', AutoDelete: 2 }] }],
      ['duplicate keys', { FromUserId: 'alice', RoomId: 'r', Attributes: [{ Key: 'k', Value: '1' }, { Key: 'k', Value: '2' }] }],
      ['attributes over 5120 bytes in total', { FromUserId: 'alice', RoomId: 'r', Attributes: big }],
      ['body an array', [{ FromUserId: 'alice', RoomId: 'r' }]],
      ['body null', null],
    ];
    it.each(violations)('%s → 660000002', async (_name, body) => {
      const json = await call(base, { rawBody: JSON.stringify(body) });
      expect(json).toEqual({ Code: 660000002, Message: 'Parameter error', RequestId: expect.any(String) });
      expect(fake.createdRooms).toEqual([]);
    });

    it('accepts the edges of every rule and ignores unknown fields', async () => {
      const specials = '!#$%&()+-:;<=.>?@[]^_ ,{';
      const attributes = Array.from({ length: 20 }, (_, i) => ({ Key: `k${i}`, Value: 'v', AutoDelete: i % 2 }));
      const json = await call(base, {
        body: {
          FromUserId: `aZ9${specials}`,
          RoomId: `x${specials}`.padEnd(32, 'y'),
          RoomName: '中'.repeat(21),
          DestroyDelayTime: 10800,
          Attributes: attributes,
          SomethingNew: true,
        },
      });
      expect(json.Code).toBe(0);
      expect(json.AttributeSeq).toBe(20);
      expect((await call(base, { body: { FromUserId: 'a', RoomId: 'zero', DestroyDelayTime: 0 } })).AttributeSeq).toBe(0);
    });
  });

  describe('room state', () => {
    it('refuses a duplicate room with 660300014', async () => {
      expect((await call(base, { body: { FromUserId: 'alice', RoomId: 'dup' } })).Code).toBe(0);
      expect((await call(base, { body: { FromUserId: 'bob', RoomId: 'dup' } })).Code).toBe(660300014);
      expect(fake.createdRooms).toEqual(['dup']);
    });

    it('refuses rooms over the quota with 660300015', async () => {
      const server = await startServer({ roomQuota: 2 });
      expect((await call(server.url)).Code).toBe(0);
      expect((await call(server.url)).Code).toBe(0);
      expect((await call(server.url)).Code).toBe(660300015);
      expect(server.createdRooms).toHaveLength(2);
    });

    it('refuses an unregistered operator with 660500002', async () => {
      const server = await startServer({ registeredUsers: ['alice'] });
      expect((await call(server.url, { body: { FromUserId: 'alice', RoomId: 'a' } })).Code).toBe(0);
      expect((await call(server.url, { body: { FromUserId: 'mallory', RoomId: 'b' } })).Code).toBe(660500002);
    });
  });

  describe('QPS limit', () => {
    it('refuses the 21st of 21 simultaneous calls with 660300005', async () => {
      const server = await startServer({ qpsLimit: 20, qpsWindowMs: 60_000 });
      const codes = await Promise.all(Array.from({ length: 21 }, async () => (await call(server.url)).Code));
      expect(codes.filter((c) => c === 0)).toHaveLength(20);
      expect(codes.filter((c) => c === 660300005)).toHaveLength(1);
      expect(server.createdRooms).toHaveLength(20);
      expect(maxCallsInAnyWindow(server.calls.map((c) => c.at), 60_000)).toBe(21);
    });

    it('counts refused calls, and faulted ones, but not unauthenticated ones', async () => {
      const server = await startServer({ qpsLimit: 3, qpsWindowMs: 60_000 });
      expect((await call(server.url, { secret: 'wrong' })).Code).toBe(100000005); // not counted
      server.injectFault({ kind: 'http500', times: 1 });
      expect((await post(server.url)).status).toBe(500); // counted: 1
      expect((await call(server.url, { rawBody: '[]' })).Code).toBe(660000002); // counted: 2
      expect((await call(server.url)).Code).toBe(0); // counted: 3
      expect((await call(server.url)).Code).toBe(660300005); // counted: 4
      expect((await call(server.url)).Code).toBe(660300005); // refused calls count too
    });

    it('frees the window as time passes', async () => {
      const server = await startServer({ qpsLimit: 1, qpsWindowMs: 50 });
      expect((await call(server.url)).Code).toBe(0);
      const firstAt = server.calls[0].atHr;
      await waitFor(() => performance.now() > firstAt + 60);
      expect((await call(server.url)).Code).toBe(0);
    });
  });

  describe('recording', () => {
    it('records every call to the vendor endpoint with what was answered', async () => {
      const body = { FromUserId: 'alice', RoomId: 'rec' };
      const before = Date.now();
      await call(base, { body });
      await call(base, { secret: 'bad', body });
      const calls = fake.calls;
      expect(calls).toHaveLength(2);
      const [first, second] = calls as [ReceivedCall, ReceivedCall];
      expect(first.at).toBeGreaterThanOrEqual(before);
      expect(second.atHr).toBeGreaterThanOrEqual(first.atHr);
      expect(first).toMatchObject({
        method: 'POST',
        action: 'CreateRoom',
        rawBody: JSON.stringify(body),
        body,
        code: 0,
        fault: null,
      });
      expect(first.query).toMatchObject({ Action: 'CreateRoom', AppId: '12345', SignatureVersion: '2.0' });
      expect(first.headers['content-type']).toBe('application/json');
      expect(second.code).toBe(100000005);
    });

    it('reset() clears calls, rooms, QPS history and faults', async () => {
      const server = await startServer({ qpsLimit: 1, qpsWindowMs: 60_000 });
      expect((await call(server.url, { body: { FromUserId: 'a', RoomId: 'same' } })).Code).toBe(0);
      server.injectFault({ kind: 'http500' });
      server.reset();
      expect(server.calls).toEqual([]);
      expect(server.createdRooms).toEqual([]);
      expect((await call(server.url, { body: { FromUserId: 'a', RoomId: 'same' } })).Code).toBe(0);
    });
  });

  describe('faults', () => {
    const lastCall = (): ReceivedCall => fake.calls[fake.calls.length - 1];

    it('http500: HTTP 500 with a short text body', async () => {
      fake.injectFault({ kind: 'http500', times: 1 });
      const res = await post(base);
      expect(res.status).toBe(500);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await res.text()).toBe('Internal Server Error');
      expect(lastCall()).toMatchObject({ fault: 'http500', code: null });
      expect(fake.createdRooms).toEqual([]);
    });

    it('html503: HTTP 503 with an HTML body', async () => {
      fake.injectFault({ kind: 'html503', times: 1 });
      const res = await post(base);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await res.text()).toMatch(/^<html>/);
      expect(lastCall()).toMatchObject({ fault: 'html503', code: null });
    });

    it('reset: the connection dies without an answer', async () => {
      fake.injectFault({ kind: 'reset', times: 1 });
      await expect(post(base)).rejects.toThrow();
      expect(lastCall()).toMatchObject({ fault: 'reset', code: null });
      expect((await call(base)).Code).toBe(0); // the next call is normal again
    });

    it('resetAfterCreate: the room is created, then the connection dies without an answer', async () => {
      fake.injectFault({ kind: 'resetAfterCreate', times: 1 });
      await expect(post(base, { body: { FromUserId: 'a', RoomId: 'acted' } })).rejects.toThrow();
      expect(lastCall()).toMatchObject({ fault: 'resetAfterCreate', code: 0 });
      expect(fake.createdRooms).toEqual(['acted']);
      // The caller's retry finds the room.
      expect((await call(base, { body: { FromUserId: 'a', RoomId: 'acted' } })).Code).toBe(660300014);
    });

    it('garbage: HTTP 200 with a non-JSON body', async () => {
      fake.injectFault({ kind: 'garbage', times: 1 });
      const res = await post(base);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('<<not json>>');
      expect(lastCall()).toMatchObject({ fault: 'garbage', code: null });
    });

    it('truncatedJson: HTTP 200 JSON cut in the middle', async () => {
      fake.injectFault({ kind: 'truncatedJson', times: 1 });
      const res = await post(base);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const text = await res.text();
      expect(text).toBe('{"Code":0,"Mess');
      expect(() => JSON.parse(text)).toThrow();
    });

    it('wrongContentType: HTTP 200 text/plain "OK"', async () => {
      fake.injectFault({ kind: 'wrongContentType', times: 1 });
      const res = await post(base);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await res.text()).toBe('OK');
    });

    it('hang: never answers; the client times out', async () => {
      fake.injectFault({ kind: 'hang', times: 1 });
      const started = performance.now();
      await expect(post(base, { signal: AbortSignal.timeout(200) })).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(performance.now() - started).toBeGreaterThanOrEqual(190);
      expect(lastCall()).toMatchObject({ fault: 'hang', code: null });
    });

    it('hang: stop() closes the hanging socket and returns promptly', async () => {
      const server = await startServer();
      server.injectFault({ kind: 'hang' });
      const pending = post(server.url);
      pending.catch(() => undefined); // asserted below; avoid an unhandled rejection meanwhile
      await waitFor(() => server.calls.length === 1);
      const started = performance.now();
      await server.stop();
      expect(performance.now() - started).toBeLessThan(1000);
      await expect(pending).rejects.toThrow();
    });

    it('stop() also closes idle keep-alive sockets promptly', async () => {
      const server = await startServer();
      expect((await call(server.url)).Code).toBe(0);
      const started = performance.now();
      await server.stop();
      expect(performance.now() - started).toBeLessThan(1000);
    });

    it('delay: answers normally after delayMs', async () => {
      fake.injectFault({ kind: 'delay', delayMs: 150, times: 1 });
      const started = performance.now();
      const json = await call(base, { body: { FromUserId: 'a', RoomId: 'slow' } });
      expect(performance.now() - started).toBeGreaterThanOrEqual(145);
      expect(json.Code).toBe(0);
      expect(lastCall()).toMatchObject({ fault: 'delay', code: 0 });
      expect(fake.createdRooms).toEqual(['slow']);
    });

    it('code: answers the given Code without creating anything', async () => {
      fake.injectFault({ kind: 'code', code: 660300005, times: 1 });
      const json = await call(base, { body: { FromUserId: 'a', RoomId: 'nope' } });
      expect(json).toEqual({ Code: 660300005, Message: 'Frequency limit', RequestId: expect.any(String) });
      expect(lastCall()).toMatchObject({ fault: 'code', code: 660300005 });
      expect(fake.createdRooms).toEqual([]);
    });

    it('consumes faults FIFO, `times` calls each; without `times` until clearFaults()', async () => {
      fake.injectFault({ kind: 'http500', times: 2 });
      fake.injectFault({ kind: 'code', code: 1, times: 1 });
      fake.injectFault({ kind: 'garbage' });
      expect((await post(base)).status).toBe(500);
      expect((await post(base)).status).toBe(500);
      expect((await call(base)).Code).toBe(1);
      expect(await (await post(base)).text()).toBe('<<not json>>');
      expect(await (await post(base)).text()).toBe('<<not json>>');
      fake.clearFaults();
      expect((await call(base)).Code).toBe(0);
    });

    it('rejects malformed fault specs', () => {
      expect(() => fake.injectFault({ kind: 'nope' } as unknown as FaultSpec)).toThrow();
      expect(() => fake.injectFault({ kind: 'delay' })).toThrow();
      expect(() => fake.injectFault({ kind: 'code' })).toThrow();
      expect(() => fake.injectFault({ kind: 'http500', times: 0 })).toThrow();
    });
  });

  describe('control API', () => {
    const control = (path: string, init?: RequestInit): Promise<Response> => fetch(`${base}/_fake/${path}`, init);
    const json = async <T>(res: Response): Promise<T> => (await res.json()) as T;

    it('health', async () => {
      const res = await control('health');
      expect(res.status).toBe(200);
      expect(await json(res)).toEqual({ ok: true, appId: APP_ID });
    });

    it('calls, rooms and reset; control requests are neither recorded nor counted', async () => {
      await call(base, { body: { FromUserId: 'a', RoomId: 'ctl' } });
      const calls = await json<ReceivedCall[]>(await control('calls'));
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({ action: 'CreateRoom', code: 0, fault: null, body: { RoomId: 'ctl' } });
      expect(typeof calls[0].atHr).toBe('number');
      expect(await json(await control('rooms'))).toEqual(['ctl']);
      expect(fake.calls).toHaveLength(1);

      expect((await control('reset', { method: 'POST' })).status).toBe(200);
      expect(await json(await control('calls'))).toEqual([]);
      expect(await json(await control('rooms'))).toEqual([]);
    });

    it('queues faults (one or an array) and clears them', async () => {
      const one = await control('faults', { method: 'POST', body: JSON.stringify({ kind: 'http500', times: 1 }) });
      expect(one.status).toBe(200);
      const many: FaultSpec[] = [
        { kind: 'code', code: 660300014, times: 1 },
        { kind: 'wrongContentType' },
      ];
      expect((await control('faults', { method: 'POST', body: JSON.stringify(many) })).status).toBe(200);
      expect(await json(await control('faults'))).toEqual([
        { kind: 'http500', times: 1 },
        { kind: 'code', code: 660300014, times: 1 },
        { kind: 'wrongContentType', times: null },
      ]);

      expect((await post(base)).status).toBe(500);
      expect((await call(base)).Code).toBe(660300014);
      expect(await (await post(base)).text()).toBe('OK');
      expect((await control('faults', { method: 'DELETE' })).status).toBe(200);
      expect((await call(base)).Code).toBe(0);
      expect(fake.calls.map((c) => c.fault)).toEqual(['http500', 'code', 'wrongContentType', null]);
    });

    it('answers 400 to a malformed fault and 404 to an unknown route', async () => {
      expect((await control('faults', { method: 'POST', body: '{"kind":"nope"}' })).status).toBe(400);
      expect((await control('faults', { method: 'POST', body: 'not json' })).status).toBe(400);
      expect((await control('nothing')).status).toBe(404);
      expect(fake.pendingFaults).toEqual([]);
    });
  });

  describe('answer time', () => {
    interface TimedCall {
      roomId: string;
      sentHr: number;
      answeredHr: number;
      code: number;
    }
    /** Calls in flight at once, each with its send and answer times (performance.now()). */
    function timedCalls(server: FakeZimServer, count: number): Promise<TimedCall[]> {
      return Promise.all(
        Array.from({ length: count }, async () => {
          const roomId = newRoomId();
          const sentHr = performance.now();
          const { Code } = await call(server.url, { body: { FromUserId: 'alice', RoomId: roomId } });
          return { roomId, sentHr, answeredHr: performance.now(), code: Code };
        }),
      );
    }
    const recordOf = (server: FakeZimServer, roomId: string): ReceivedCall =>
      server.calls.find((c) => (c.body as { RoomId?: string } | undefined)?.RoomId === roomId)!;

    it('waits a random time in [minMs, maxMs] per call, counted from the arrival it records', async () => {
      const server = await startServer({ qpsLimit: 1000, answerTimeMs: { minMs: 40, maxMs: 120 } });
      const timed = await timedCalls(server, 12);
      const drawn: number[] = [];
      for (const { roomId, sentHr, answeredHr, code } of timed) {
        const record = recordOf(server, roomId);
        expect(code).toBe(0);
        expect(record.answerTimeMs).toBeGreaterThanOrEqual(40);
        expect(record.answerTimeMs).toBeLessThanOrEqual(120);
        // The arrival is when the request came, not when it was answered.
        expect(record.atHr).toBeGreaterThanOrEqual(sentHr);
        expect(answeredHr - record.atHr).toBeGreaterThanOrEqual(record.answerTimeMs! - TIMER_SLACK_MS);
        drawn.push(record.answerTimeMs!);
      }
      expect(new Set(drawn).size).toBeGreaterThan(1);
    });

    it('is exactly minMs when minMs = maxMs, and none without the option', async () => {
      const fixed = await startServer({ answerTimeMs: { minMs: 50, maxMs: 50 } });
      const [timed] = await timedCalls(fixed, 1);
      expect(recordOf(fixed, timed!.roomId).answerTimeMs).toBe(50);
      expect(timed!.answeredHr - timed!.sentHr).toBeGreaterThanOrEqual(50 - TIMER_SLACK_MS);
      await call(base);
      expect(fake.calls[0]).toMatchObject({ answerTimeMs: null, code: 0 });
    });

    it('counts a call for QPS at its arrival, not when it is answered', async () => {
      // Counted when answered instead, the slow call would leave the window before it enters it.
      const server = await startServer({ qpsLimit: 1, qpsWindowMs: 500, answerTimeMs: { minMs: 600, maxMs: 600 } });
      const slow = call(server.url, { body: { FromUserId: 'a', RoomId: 'slow' } });
      await waitFor(() => server.calls.length === 1);
      server.setAnswerTime(null);
      // Arrives within the window after the slow call, which is still waiting for its answer.
      expect((await call(server.url, { body: { FromUserId: 'a', RoomId: 'quick' } })).Code).toBe(660300005);
      expect(server.calls.map((c) => c.code)).toEqual([null, 660300005]);
      expect((await slow).Code).toBe(0);
      expect(server.createdRooms).toEqual(['slow']);
    });

    it('comes before every fault, and a delay fault waits on top of it', async () => {
      const server = await startServer({ answerTimeMs: { minMs: 60, maxMs: 60 } });
      server.injectFault({ kind: 'http500', times: 1 });
      server.injectFault({ kind: 'code', code: 660300014, times: 1 });
      server.injectFault({ kind: 'reset', times: 1 });
      server.injectFault({ kind: 'delay', delayMs: 50, times: 1 });
      const timed = async <T>(send: () => Promise<T>): Promise<{ result: T; elapsed: number }> => {
        const started = performance.now();
        const result = await send();
        return { result, elapsed: performance.now() - started };
      };

      const http500 = await timed(() => post(server.url));
      expect(http500.result.status).toBe(500);
      expect(http500.elapsed).toBeGreaterThanOrEqual(60 - TIMER_SLACK_MS);
      const code = await timed(() => call(server.url));
      expect(code.result.Code).toBe(660300014);
      expect(code.elapsed).toBeGreaterThanOrEqual(60 - TIMER_SLACK_MS);
      const reset = await timed(() => post(server.url).then(() => 'answered', () => 'failed'));
      expect(reset.result).toBe('failed');
      expect(reset.elapsed).toBeGreaterThanOrEqual(60 - TIMER_SLACK_MS);
      const delayed = await timed(() => call(server.url));
      expect(delayed.result.Code).toBe(0);
      expect(delayed.elapsed).toBeGreaterThanOrEqual(60 + 50 - TIMER_SLACK_MS);

      expect(server.calls.map((c) => [c.fault, c.answerTimeMs])).toEqual([
        ['http500', 60],
        ['code', 60],
        ['reset', 60],
        ['delay', 60],
      ]);
    });

    it('PUT /_fake/answer-time sets it for the calls that arrive afterwards; {} and null clear it', async () => {
      const server = await startServer();
      const put = (body: string): Promise<Response> =>
        fetch(`${server.url}/_fake/answer-time`, { method: 'PUT', body });
      const current = async (): Promise<unknown> => (await fetch(`${server.url}/_fake/answer-time`)).json();
      expect(await current()).toBeNull();

      const set = await put(JSON.stringify({ minMs: 30, maxMs: 30 }));
      expect(set.status).toBe(200);
      expect(await set.json()).toEqual({ ok: true, answerTimeMs: { minMs: 30, maxMs: 30 } });
      expect(await current()).toEqual({ minMs: 30, maxMs: 30 });
      await call(server.url);
      expect((await put('{}')).status).toBe(200);
      expect(await current()).toBeNull();
      await call(server.url);
      expect(server.calls.map((c) => c.answerTimeMs)).toEqual([30, null]);

      expect((await put(JSON.stringify({ minMs: 5, maxMs: 10 }))).status).toBe(200);
      expect((await put('null')).status).toBe(200);
      expect(await current()).toBeNull();

      const malformed = ['{"minMs":10,"maxMs":5}', '{"minMs":-1,"maxMs":5}', '{"minMs":"1","maxMs":2}', '{"minMs":1}', 'not json'];
      for (const body of malformed) expect((await put(body)).status).toBe(400);
      expect(await current()).toBeNull();
      const backwards = { minMs: 5, maxMs: 1 };
      expect(() => new FakeZimServer({ appId: APP_ID, serverSecret: SECRET, answerTimeMs: backwards })).toThrow();
    });
  });

  describe('keep-alive', () => {
    it('closes an idle connection after keepAliveTimeoutMs, as its Keep-Alive header announces', async () => {
      const server = await startServer({ keepAliveTimeoutMs: 1000 });
      const connection = await idleAfterOneRequest(server);
      expect(connection.response).toMatch(/\r\nKeep-Alive: timeout=1\r\n/i);
      expect(server.connections).toEqual({ opened: 1, open: 1, tlsSessionsReused: null });
      // Node 20 closes it 1000 ms after the announced time; with its default it would take 6000 ms.
      await waitFor(() => connection.closedAt() !== undefined, { what: 'the idle connection closed', timeoutMs: 4000 });
      expect(connection.endedByServer()).toBe(true);
      // Never before the announced time, which a client may rely on.
      expect(connection.closedAt()! - connection.sentAt).toBeGreaterThanOrEqual(1000 - TIMER_SLACK_MS);
      await waitFor(() => server.connections.open === 0, { what: 'the server saw it close' });
    });

    it('PUT /_fake/keep-alive changes it from each connection\'s next answer on', async () => {
      const server = await startServer();
      const control = (init?: RequestInit): Promise<Response> => fetch(`${server.url}/_fake/keep-alive`, init);
      expect(await (await control()).json()).toEqual({ timeoutMs: 5000 }); // Node's default
      const before = await idleAfterOneRequest(server);
      expect(before.response).toMatch(/\r\nKeep-Alive: timeout=5\r\n/i);

      const set = await control({ method: 'PUT', body: JSON.stringify({ timeoutMs: 300 }) });
      expect(await set.json()).toEqual({ ok: true, timeoutMs: 300 });
      expect(server.keepAliveTimeoutMs).toBe(300);
      const after = await idleAfterOneRequest(server);
      expect(after.response).toMatch(/\r\nKeep-Alive: timeout=0\r\n/i);
      await waitFor(() => after.closedAt() !== undefined, { what: 'the idle connection closed', timeoutMs: 3000 });
      expect(after.endedByServer()).toBe(true);
      expect(after.closedAt()! - after.sentAt).toBeGreaterThanOrEqual(300 - TIMER_SLACK_MS);
      // Its idle timer was armed with the old timeout at its answer.
      expect(before.closedAt()).toBeUndefined();

      for (const malformed of ['{"timeoutMs":-1}', '{"timeoutMs":1.5}', '{}', 'not json']) {
        expect((await control({ method: 'PUT', body: malformed })).status).toBe(400);
      }
      expect(server.keepAliveTimeoutMs).toBe(300);
    });
  });

  describe('connections', () => {
    it('records the connection each call came on and its place there, control requests included', async () => {
      const server = await startServer();
      const first = keepAliveAgent();
      const second = keepAliveAgent();
      for (let i = 0; i < 3; i++) expect((await nodeCall(server.url, { agent: first })).status).toBe(200);
      expect((await nodeCall(server.url, { agent: second })).status).toBe(200);

      const calls = server.calls;
      const [a, b] = [calls[0]!.connection, calls[3]!.connection];
      expect(a).not.toBe(b);
      expect(calls.map((c) => [c.connection, c.requestOnConnection, c.tlsSessionReused])).toEqual([
        [a, 1, null],
        [a, 2, null],
        [a, 3, null],
        [b, 1, null],
      ]);
      expect(server.connections).toEqual({ opened: 2, open: 2, tlsSessionsReused: null });

      first.destroy();
      await waitFor(() => server.connections.open === 1, { what: 'the first connection closed' });
      const counts = await nodeRequest(`${server.url}/_fake/connections`, { agent: second });
      expect(JSON.parse(counts.text)).toEqual({ opened: 2, open: 1, tlsSessionsReused: null });
      const recorded = await nodeRequest(`${server.url}/_fake/calls`, { agent: second });
      const recordedCalls = JSON.parse(recorded.text) as ReceivedCall[];
      expect(recordedCalls.map((c) => [c.connection, c.requestOnConnection])).toEqual([
        [a, 1],
        [a, 2],
        [a, 3],
        [b, 1],
      ]);

      // The two control requests came on the second connection too; reset() keeps counting.
      server.reset();
      await nodeCall(server.url, { agent: second });
      expect(server.calls.map((c) => [c.connection, c.requestOnConnection])).toEqual([[b, 4]]);
    });
  });

  describe('HTTPS', () => {
    let certificate: TestCertificate;
    beforeAll(async () => {
      certificate = await createTestCertificate();
    });
    afterAll(async () => {
      await certificate?.remove();
    });
    const startTlsServer = (options: Partial<FakeZimOptions> = {}): Promise<FakeZimServer> =>
      startServer({ tls: { cert: certificate.certPem, key: certificate.keyPem }, ...options });

    it('serves the vendor endpoint and the control API over HTTPS with the given certificate', async () => {
      const server = await startTlsServer();
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const trusted = { ca: certificate.certPem, agent: false as const };
      const created = await nodeCall(server.url, trusted, { body: { FromUserId: 'a', RoomId: 'tls' } });
      expect(JSON.parse(created.text)).toMatchObject({ Code: 0 });
      const health = await nodeRequest(`${server.url}/_fake/health`, trusted);
      expect(JSON.parse(health.text)).toEqual({ ok: true, appId: APP_ID });
      expect(server.createdRooms).toEqual(['tls']);
      // Without the certificate trusted, a client refuses the server.
      const untrusted = nodeRequest(`${server.url}/_fake/health`, { agent: false });
      await expect(untrusted).rejects.toThrow(/self-signed|certificate/i);
    });

    it('resumes the TLS session of a client that passes it, and records that', async () => {
      const server = await startTlsServer();
      // No session cache in the agent: the test decides which request passes the session.
      const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 0 });
      agents.push(agent);
      const init = { ca: certificate.certPem, agent };
      const full = await nodeCall(server.url, init);
      await waitFor(() => full.tlsSession() !== undefined, { what: 'a TLS session from the server' });
      const resumed = await nodeCall(server.url, { ...init, session: full.tlsSession() });
      const again = await nodeCall(server.url, init);
      expect([full.status, resumed.status, again.status]).toEqual([200, 200, 200]);

      const calls = server.calls;
      expect(new Set(calls.map((c) => c.connection)).size).toBe(3);
      expect(calls.map((c) => [c.requestOnConnection, c.tlsSessionReused])).toEqual([
        [1, false],
        [1, true],
        [1, false],
      ]);
      expect(server.connections).toMatchObject({ opened: 3, tlsSessionsReused: 1 });
      const counts = await nodeRequest(`${server.url}/_fake/connections`, init);
      expect(JSON.parse(counts.text)).toMatchObject({ opened: 4, tlsSessionsReused: 1 });
    });

    it('reset faults reset the TCP connection under TLS too', async () => {
      const server = await startTlsServer();
      server.injectFault({ kind: 'reset', times: 1 });
      server.injectFault({ kind: 'resetAfterCreate', times: 1 });
      const init = { ca: certificate.certPem, agent: false as const };
      await expect(nodeCall(server.url, init)).rejects.toMatchObject({ code: 'ECONNRESET' });
      await expect(nodeCall(server.url, init, { body: { FromUserId: 'a', RoomId: 'acted' } })).rejects.toMatchObject({
        code: 'ECONNRESET',
      });
      expect(JSON.parse((await nodeCall(server.url, init)).text)).toMatchObject({ Code: 0 });
      expect(server.calls.map((c) => [c.fault, c.code])).toEqual([
        ['reset', null],
        ['resetAfterCreate', 0],
        [null, 0],
      ]);
      expect(server.createdRooms).toContain('acted');
    });

    it('stop() closes kept-alive TLS connections promptly', async () => {
      const server = await startTlsServer();
      const agent = new https.Agent({ keepAlive: true, ca: certificate.certPem });
      agents.push(agent);
      expect((await nodeCall(server.url, { agent })).status).toBe(200);
      expect(server.connections.open).toBe(1);
      const started = performance.now();
      await server.stop();
      expect(performance.now() - started).toBeLessThan(1000);
    });
  });

  describe('maxCallsInAnyWindow', () => {
    it.each([
      ['no calls', [], 1000, 0],
      ['one call', [5], 1000, 1],
      ['all inside one window', [0, 100, 999], 1000, 3],
      ['exactly one window apart is not the same window', [0, 1000], 1000, 1],
      ['unsorted input', [2500, 0, 2000, 10, 2100, 2999], 1000, 4],
      ['equal times', [7, 7, 7], 1, 3],
      ['a burst in the middle', [0, 1000, 1500, 1501, 1502, 2600], 1000, 4],
    ])('%s', (_name, times, windowMs, expected) => {
      expect(maxCallsInAnyWindow(times, windowMs)).toBe(expected);
    });
  });
});
