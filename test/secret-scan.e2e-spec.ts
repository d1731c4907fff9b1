/**
 * The gateway never emits the ServerSecret, an API key, a Redis password or the SHA-256 of any of
 * them: not in a response (status, headers, body) and not on stdout or stderr. One gateway with
 * sentinel values everywhere goes through every endpoint and error path (/rooms with each kind of
 * answer, /metrics, /docs, /docs-json, /health/*, unknown routes), plus a second one with a wrong
 * ServerSecret (the vendor refuses its signature). Its Redis URL carries a password and points at
 * a closed port, so Redis connection errors are logged too.
 *
 * This is the in-suite test. The whole-suite net is the jest global teardown
 * (test/support/secret-scan.global-teardown.js), which scans what every e2e suite's gateways
 * emitted; the last test here checks that the recording it relies on works.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sha256Hex } from './support/api-keys.js';
import type { EnvLayer } from './support/gateway-env.js';
import type { GatewayProcess } from './support/gateway-process.js';
import { HttpRecorder } from './support/http-recorder.js';
import { closedPort } from './support/ports.js';
import { scenario } from './support/scenario.js';
import { EMISSIONS_DIR_VARIABLE, findLeaks, gatewayOutputs } from './support/secret-scan.js';

const APP_ID = 1618033988;
const SECRET = 'SENTINEL-secret-scan-5e2a9c7f1b40d863';
const WRONG_SECRET = 'SENTINEL-wrong-secret-scan-0d7b3e9a5c21f648';
const KEY = 'sk-SENTINEL-scan-2b8f4d0a6e13c795';
const KEY_TIGHT = 'sk-SENTINEL-scan-tight-9a1c5e7b3f02d486';
const WRONG_KEY = 'sk-SENTINEL-wrong-scan-4f6a0c2e8b19d735';
const REDIS_PASSWORD = 'SENTINEL-redis-password-scan-7c3e1a9f5b08d264';

const NEEDLES: Record<string, string> = {
  ZEGO_SERVER_SECRET: SECRET,
  'the wrong ZEGO_SERVER_SECRET': WRONG_SECRET,
  'API key': KEY,
  'second API key': KEY_TIGHT,
  'unknown API key': WRONG_KEY,
  'Redis password': REDIS_PASSWORD,
  ...Object.fromEntries(
    [SECRET, WRONG_SECRET, KEY, KEY_TIGHT, WRONG_KEY, REDIS_PASSWORD].map((value, i) => [`SHA-256 of needle ${i}`, sha256Hex(value)]),
  ),
};

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET, registeredUsers: ['scan-operator', 'scan-bot'] },
  apiKeys: { 'svc-scan': KEY, 'svc-scan-tight': KEY_TIGHT },
  env: {
    ZEGO_DEFAULT_FROM_USER_ID: 'scan-operator',
    ZEGO_TIMEOUT_MS: '300',
    ZEGO_CALL_DEADLINE_MS: '1000',
    CLIENT_RATE_LIMIT: '1000',
    CLIENT_RATE_LIMITS: 'svc-scan-tight:1',
    LOG_LEVEL: 'debug',
  },
});
const { fake, gateways } = s;
const http = new HttpRecorder();
let gw: GatewayProcess;
let wrongSecret: GatewayProcess;
let counter = 0;

/** A gateway whose Redis URL carries the password and points at a closed port. */
async function launch(extra: EnvLayer): Promise<GatewayProcess> {
  const redisUrl = `redis://scan-user:${REDIS_PASSWORD}@127.0.0.1:${await closedPort()}`;
  return s.startGateway({ REDIS_URL: redisUrl, ...extra });
}

function post(gateway: GatewayProcess, body: unknown, headers: Record<string, string> = {}, key: string | null = KEY) {
  return http.request(`${gateway.url}/rooms`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      ...(key === null ? {} : { Authorization: `Bearer ${key}` }),
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const room = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ roomId: `scan-${++counter}`, ...extra });

beforeAll(async () => {
  [gw, wrongSecret] = await Promise.all([launch({}), launch({ ZEGO_SERVER_SECRET: WRONG_SECRET })]);
}, 30_000);

describe('secret scan', () => {
  it('exercises every endpoint and error path', async () => {
    const statuses: Record<string, number> = {};
    const note = async (name: string, exchange: Promise<{ status: number }>): Promise<void> => {
      statuses[name] = (await exchange).status;
    };
    const duplicate = room();
    await note('created', post(gw, duplicate));
    await note('room exists', post(gw, duplicate));
    await note('no key', post(gw, room(), {}, null));
    await note('unknown key', post(gw, room(), {}, WRONG_KEY));
    await note('unknown key, no Bearer', post(gw, room(), { Authorization: WRONG_KEY }, null));
    // Secrets travel only where they belong (environment, Authorization): what a caller puts in
    // a body, a path or X-Request-Id is its own data, which the gateway may echo.
    await note('unknown fields', post(gw, room({ apiKey: 'x', secret: 'y' })));
    await note('malformed JSON', post(gw, '{"roomId": "scan-x",'));
    await note('body not an object', post(gw, '"scan"'));
    await note('invalid fields', post(gw, { roomId: 'scan/bad', fromUserId: '', destroyDelayTime: '5' }));
    await note('wrong content type', post(gw, 'roomId=scan', { 'Content-Type': 'text/plain' }));
    await note('too large', post(gw, { roomId: 'scan-big', roomName: 'x'.repeat(70 * 1024) }));
    await note('operator not registered', post(gw, room({ fromUserId: 'scan-stranger' })));
    fake.injectFault({ kind: 'code', code: 660000002, times: 1 });
    await note('vendor parameter error', post(gw, room()));
    fake.injectFault({ kind: 'http500', times: 1 });
    await note('vendor HTTP 500', post(gw, room()));
    fake.injectFault({ kind: 'garbage', times: 1 });
    await note('vendor garbage', post(gw, room()));
    fake.injectFault({ kind: 'reset' });
    await note('vendor resets', post(gw, room()));
    fake.clearFaults();
    fake.injectFault({ kind: 'hang', times: 1 });
    await note('vendor hangs', post(gw, room()));
    fake.injectFault({ kind: 'code', code: 660300005 });
    await note('vendor rate limit', post(gw, room()));
    fake.clearFaults();
    await note('wrong ServerSecret', post(wrongSecret, room()));
    await note('quota first', post(gw, room(), {}, KEY_TIGHT));
    await note('quota spent', post(gw, room(), {}, KEY_TIGHT));
    await note('GET /rooms', http.request(`${gw.url}/rooms`, { headers: { Authorization: `Bearer ${KEY}` } }));
    await note('unknown route', http.request(`${gw.url}/no/such/route`, { headers: { Authorization: `Bearer ${KEY}` } }));
    await note('live', http.request(`${gw.url}/health/live`));
    await note('ready', http.request(`${gw.url}/health/ready`));
    await note('docs', http.request(`${gw.url}/docs`));
    await note('docs-json', http.request(`${gw.url}/docs-json`));
    await note('metrics', http.request(`${gw.url}/metrics`));
    await note('metrics (wrong secret)', http.request(`${wrongSecret.url}/metrics`));

    expect(statuses).toEqual({
      created: 201,
      'room exists': 409,
      'no key': 401,
      'unknown key': 401,
      'unknown key, no Bearer': 401,
      'unknown fields': 400,
      'malformed JSON': 400,
      'body not an object': 400,
      'invalid fields': 400,
      'wrong content type': 415,
      'too large': 413,
      'operator not registered': 422,
      'vendor parameter error': 400,
      'vendor HTTP 500': 502,
      'vendor garbage': 502,
      'vendor resets': 502,
      'vendor hangs': 504,
      'vendor rate limit': 429,
      'wrong ServerSecret': 502,
      'quota first': 201,
      'quota spent': 429,
      'GET /rooms': 404,
      'unknown route': 404,
      live: 200,
      ready: 200,
      docs: 200,
      'docs-json': 200,
      metrics: 200,
      'metrics (wrong secret)': 200,
    });
    // The Redis URL's host was tried (and failed) at least once: its errors are in the logs.
    expect(gw.logLines().some((line) => /redis/i.test(line.raw))).toBe(true);
  }, 30_000);

  it('no response, header or log line carries a secret, a key, the Redis password or a digest of one', async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    const haystacks = { responses: http.transcript().replace(/^\S+ \S+ -> /gm, ''), ...gatewayOutputs(gateways) };
    expect(http.exchanges.length).toBeGreaterThan(25);
    expect(findLeaks(haystacks, NEEDLES)).toEqual([]);
    // No value with a sentinel prefix either (a key or secret cut or extended is still a leak).
    const prefixed = /sk-SENTINEL-|SENTINEL-(?:secret|wrong|redis-password)-/;
    expect(Object.entries(haystacks).filter(([, text]) => prefixed.test(text)).map(([name]) => name)).toEqual([]);
  });

  it('records what it saw for the whole-suite scan when ZIM_GW_EMISSIONS_DIR is set', () => {
    const dir = process.env[EMISSIONS_DIR_VARIABLE];
    if (dir === undefined || dir === '') return; // run outside jest's global setup
    expect(existsSync(dir)).toBe(true);
    const mine = readdirSync(dir).filter((name) => name.startsWith(`${path.basename(import.meta.url)}.`));
    expect(mine.filter((name) => name.endsWith('.http.log'))).toHaveLength(1);
    for (const g of gateways) {
      const file = mine.find((name) => name.endsWith(`.child-${g.pid}.stdout.log`));
      expect(file).toBeDefined();
      expect(readFileSync(path.join(dir, file!), 'utf8')).toBe(g.stdout());
    }
  });
});
