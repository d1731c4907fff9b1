/**
 * The fake vendor as a process of its own (main.ts, built into dist-dev by `npm run build:dev`),
 * started through `startFakeZimProcess` (test/support/fleet.ts): its network options arrive as
 * environment variables, malformed ones stop it with a message naming the variable, and the
 * process handle drives them at run time over the control API, also over HTTPS.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { startFakeZimProcess } from '../support/fleet.js';
import { runGatewayExpectingExit, stopAllGateways } from '../support/gateway-process.js';
import { createTestCertificate, type TestCertificate } from '../support/test-certificate.js';
import { zimSignature } from './fake-zim-server.js';

const APP_ID = 31415;
const SECRET = 'SENTINEL-secret-fake-zim-main-7d21c4';
const SCRIPT = 'dist-dev/fake-zim/main.js';

let certificate: TestCertificate;

beforeAll(async () => {
  certificate = await createTestCertificate();
});

afterAll(async () => {
  await stopAllGateways();
  await certificate?.remove();
});

function signedCreateRoomUrl(baseUrl: string): string {
  const nonce = randomBytes(8).toString('hex');
  const timestamp = String(Math.floor(Date.now() / 1000));
  const query = new URLSearchParams({
    Action: 'CreateRoom',
    AppId: String(APP_ID),
    SignatureNonce: nonce,
    Timestamp: timestamp,
    SignatureVersion: '2.0',
    Signature: zimSignature(APP_ID, nonce, SECRET, timestamp),
  });
  return `${baseUrl}/?${query.toString()}`;
}

const roomBody = (roomId: string): string => JSON.stringify({ FromUserId: 'alice', RoomId: roomId });

interface CreateRoomAnswer {
  code: number;
  headers: IncomingHttpHeaders;
}

/** A CreateRoom over HTTPS, trusting `ca`, on a fresh keep-alive connection (closed after it). */
function createRoomOverHttps(baseUrl: string, roomId: string, ca: string): Promise<CreateRoomAnswer> {
  const agent = new HttpsAgent({ keepAlive: true, ca });
  return new Promise<CreateRoomAnswer>((resolve, reject) => {
    const request = httpsRequest(signedCreateRoomUrl(baseUrl), { method: 'POST', agent }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ code: (JSON.parse(text) as { Code: number }).Code, headers: response.headers }));
    });
    request.on('error', reject);
    request.end(roomBody(roomId));
  }).finally(() => agent.destroy());
}

describe('fake ZIM process', () => {
  const baseEnv = { FAKE_ZIM_PORT: '0', ZEGO_APP_ID: String(APP_ID), ZEGO_SERVER_SECRET: SECRET };

  it.each([
    ['FAKE_ZIM_ANSWER_MS backwards', { FAKE_ZIM_ANSWER_MS: '300-100' }, /FAKE_ZIM_ANSWER_MS must be a time in ms/],
    ['FAKE_ZIM_ANSWER_MS not a number', { FAKE_ZIM_ANSWER_MS: 'fast' }, /FAKE_ZIM_ANSWER_MS must be a time in ms/],
    ['FAKE_ZIM_KEEPALIVE_MS a fraction', { FAKE_ZIM_KEEPALIVE_MS: '1.5' }, /FAKE_ZIM_KEEPALIVE_MS must be an integer/],
    ['a certificate without a key', { FAKE_ZIM_TLS_CERT_FILE: '/nonexistent/cert.pem' }, /set both FAKE_ZIM_TLS_CERT_FILE/],
    [
      'TLS files that cannot be read',
      { FAKE_ZIM_TLS_CERT_FILE: '/nonexistent/cert.pem', FAKE_ZIM_TLS_KEY_FILE: '/nonexistent/key.pem' },
      /cannot read FAKE_ZIM_TLS_CERT_FILE: ENOENT/,
    ],
  ])('refuses to start with %s', async (_name, env, message) => {
    const result = await runGatewayExpectingExit({ ...baseEnv, ...env }, { script: SCRIPT });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
  });

  it('serves HTTPS with the answer time and keep-alive from its options, and changes them at run time', async () => {
    const fake = await startFakeZimProcess(APP_ID, SECRET, {
      answerTimeMs: { minMs: 20, maxMs: 40 },
      keepAliveTimeoutMs: 3000,
      tls: { certFile: certificate.certPath, keyFile: certificate.keyPath },
    });
    expect(fake.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(fake.process.stdout()).toContain(`(${fake.url})`);

    const first = await createRoomOverHttps(fake.url, 'tls-1', certificate.certPem);
    expect(first).toMatchObject({ code: 0, headers: { 'keep-alive': 'timeout=3' } });
    await fake.setAnswerTime(null);
    await fake.setKeepAliveTimeout(6000);
    const second = await createRoomOverHttps(fake.url, 'tls-2', certificate.certPem);
    expect(second).toMatchObject({ code: 0, headers: { 'keep-alive': 'timeout=6' } });

    const calls = await fake.calls();
    expect(calls.map((c) => [c.code, c.requestOnConnection, c.tlsSessionReused])).toEqual([
      [0, 1, false],
      [0, 1, false],
    ]);
    expect(calls[0]!.answerTimeMs).toBeGreaterThanOrEqual(20);
    expect(calls[0]!.answerTimeMs).toBeLessThanOrEqual(40);
    expect(calls[1]!.answerTimeMs).toBeNull();
    expect(calls[0]!.connection).not.toBe(calls[1]!.connection);
    // The two calls' connections and the handle's own control connection(s).
    const counts = await fake.connections();
    expect(counts.opened).toBeGreaterThanOrEqual(3);
    expect(counts.tlsSessionsReused).toBe(0);
    expect(await fake.createdRooms()).toEqual(['tls-1', 'tls-2']);
  });

  it('stays plain HTTP without options, and takes the script alone as the existing callers pass it', async () => {
    const fake = await startFakeZimProcess(APP_ID, SECRET, SCRIPT);
    expect(fake.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const send = async (roomId: string): Promise<number> => {
      const response = await fetch(signedCreateRoomUrl(fake.url), { method: 'POST', body: roomBody(roomId) });
      return ((await response.json()) as { Code: number }).Code;
    };
    expect(await send('plain-1')).toBe(0);
    await fake.setAnswerTime({ minMs: 10, maxMs: 10 });
    expect(await send('plain-2')).toBe(0);
    const calls = await fake.calls();
    expect(calls.map((c) => [c.answerTimeMs, c.tlsSessionReused])).toEqual([
      [null, null],
      [10, null],
    ]);
    expect((await fake.connections()).tlsSessionsReused).toBeNull();
  });
});
