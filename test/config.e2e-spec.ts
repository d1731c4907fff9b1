/**
 * End to end: the built gateway (`node dist/main.js`) started with bad configuration stops with
 * exit code 78 (EX_CONFIG) and one message naming every bad variable, never a secret; with good
 * configuration from files (mounted Secrets) it starts, authenticates and signs; SIGTERM stops it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { apiKeyEntry } from './support/api-keys.js';
import { runGatewayExpectingExit, startGateway, stopAllGateways, type ExitResult } from './support/gateway-process.js';
import { withFakeZim } from './support/scenario.js';
import { findLeaks } from './support/secret-scan.js';

const APP_ID = 1618033988;
const SECRET = 'SENTINEL-secret-config-a7c3e9f1b2d48650';
const KEY = 'sk-SENTINEL-config-4f9b2e7d1c6a0358';
const KEY_2 = 'sk-SENTINEL-config2-9e0d7c5b3a1f4826';
const URL_PASSWORD = 'SENTINEL-url-password-3b8f';
const EX_CONFIG = 78;
const TIMEOUT = 30_000;

const outputs: { name: string; stdout: string; stderr: string }[] = [];
let tmp: string;

function good(): Record<string, string> {
  return {
    ZEGO_APP_ID: String(APP_ID),
    ZEGO_SERVER_SECRET: SECRET,
    ZEGO_API_BASE_URL: 'http://127.0.0.1:9',
    API_KEYS: apiKeyEntry('svc-config', KEY),
  };
}

/** Runs the gateway expecting it to refuse the configuration; keeps the output for the leak scan. */
async function refuse(name: string, env: Record<string, string>): Promise<ExitResult> {
  const result = await runGatewayExpectingExit(env);
  outputs.push({ name, stdout: result.stdout, stderr: result.stderr });
  expect({ code: result.code, signal: result.signal }).toEqual({ code: EX_CONFIG, signal: null });
  expect(result.stderr).toMatch(/^Invalid configuration:/);
  expect(result.stdout + result.stderr).not.toMatch(/listening on port/);
  return result;
}

/** The variables the message names, one `  - NAME: reason` line each. */
function namedVariables(stderr: string): string[] {
  return [...new Set([...stderr.matchAll(/^ {2}- ([A-Z_]+): \S/gm)].map((m) => m[1]!))].sort();
}

beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'gateway-config-e2e-'));
});

afterAll(async () => {
  await stopAllGateways();
  rmSync(tmp, { recursive: true, force: true });
});

describe('bad configuration: exit 78, every bad variable named, no secret printed', () => {
  it(
    'missing ZEGO_APP_ID and a bad API_KEYS entry together',
    async () => {
      const { ZEGO_APP_ID: _omitted, ...env } = good();
      const result = await refuse('missing app id + bad key entry', {
        ...env,
        API_KEYS: `${apiKeyEntry('svc-ok', KEY)},svc-bad:not-a-sha256`,
      });
      expect(namedVariables(result.stderr)).toEqual(['API_KEYS', 'ZEGO_APP_ID']);
      expect(result.stderr).not.toContain(SECRET);
    },
    TIMEOUT,
  );

  it(
    'an empty environment names the three required variables',
    async () => {
      const result = await refuse('empty environment', {});
      expect(namedVariables(result.stderr)).toEqual(['API_KEYS', 'ZEGO_APP_ID', 'ZEGO_SERVER_SECRET']);
    },
    TIMEOUT,
  );

  it(
    'many bad variables at once are all named in one message',
    async () => {
      const result = await refuse('many bad variables', {
        ...good(),
        PORT: 'eighty',
        HTTP_KEEP_ALIVE_TIMEOUT_MS: '65s',
        HTTP_MAX_CONNECTIONS: '0',
        ZEGO_APP_ID: '4294967296', // uint32 + 1
        ZEGO_API_BASE_URL: 'ftp://zim-api.zego.im',
        ZEGO_TIMEOUT_MS: '5s',
        ZEGO_MAX_ATTEMPTS: '0',
        ZEGO_DEFAULT_FROM_USER_ID: 'bad/operator',
        ZEGO_MAX_ROOM_ATTRIBUTES: '-1',
        REDIS_URL: 'http://redis:6379',
      });
      expect(namedVariables(result.stderr)).toEqual(
        [
          'PORT',
          'HTTP_KEEP_ALIVE_TIMEOUT_MS',
          'HTTP_MAX_CONNECTIONS',
          'ZEGO_APP_ID',
          'ZEGO_API_BASE_URL',
          'ZEGO_TIMEOUT_MS',
          'ZEGO_MAX_ATTEMPTS',
          'ZEGO_DEFAULT_FROM_USER_ID',
          'ZEGO_MAX_ROOM_ATTRIBUTES',
          'REDIS_URL',
        ].sort(),
      );
      expect(result.stderr).not.toContain(SECRET);
      expect(result.stderr).not.toContain('bad/operator');
    },
    TIMEOUT,
  );

  it(
    'a raw key instead of its SHA-256 in API_KEYS is refused without echoing the key',
    async () => {
      const result = await refuse('raw key in API_KEYS', { ...good(), API_KEYS: `svc-raw:${KEY}` });
      expect(namedVariables(result.stderr)).toEqual(['API_KEYS']);
      expect(result.stderr + result.stdout).not.toContain(KEY);
    },
    TIMEOUT,
  );

  it(
    'credentials in ZEGO_API_BASE_URL are refused without echoing them',
    async () => {
      const result = await refuse('credentials in base url', {
        ...good(),
        ZEGO_API_BASE_URL: `https://user:${URL_PASSWORD}@zim-api.zego.im`,
      });
      expect(namedVariables(result.stderr)).toEqual(['ZEGO_API_BASE_URL']);
      expect(result.stderr + result.stdout).not.toContain(URL_PASSWORD);
    },
    TIMEOUT,
  );

  it(
    'both ZEGO_SERVER_SECRET and ZEGO_SERVER_SECRET_FILE set',
    async () => {
      const file = path.join(tmp, 'secret-both');
      writeFileSync(file, `${SECRET}\n`);
      const result = await refuse('secret inline and as file', { ...good(), ZEGO_SERVER_SECRET_FILE: file });
      expect(namedVariables(result.stderr)).toEqual(['ZEGO_SERVER_SECRET']);
      expect(result.stderr).not.toContain(SECRET);
    },
    TIMEOUT,
  );

  it(
    'ZEGO_SERVER_SECRET_FILE naming a missing file, API_KEYS_FILE naming an empty one',
    async () => {
      const { ZEGO_SERVER_SECRET: _s, API_KEYS: _k, ...env } = good();
      const empty = path.join(tmp, 'empty-keys');
      writeFileSync(empty, '\n');
      const result = await refuse('missing and empty files', {
        ...env,
        ZEGO_SERVER_SECRET_FILE: path.join(tmp, 'does-not-exist'),
        API_KEYS_FILE: empty,
      });
      expect(namedVariables(result.stderr)).toEqual(['API_KEYS_FILE', 'ZEGO_SERVER_SECRET_FILE']);
    },
    TIMEOUT,
  );

  it(
    'more than one way to reach Redis (REDIS_URL and REDIS_CLUSTER_NODES)',
    async () => {
      const result = await refuse('two ways to Redis', {
        ...good(),
        REDIS_URL: 'redis://127.0.0.1:6379',
        REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001',
      });
      expect(namedVariables(result.stderr)).toEqual(['REDIS_URL']);
      expect(result.stderr).toContain('set exactly one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES');
    },
    TIMEOUT,
  );

  it(
    'ZEGO_CALL_DEADLINE_MS shorter than ZEGO_TIMEOUT_MS',
    async () => {
      const result = await refuse('deadline below timeout', {
        ...good(),
        ZEGO_TIMEOUT_MS: '3000',
        ZEGO_CALL_DEADLINE_MS: '2000',
      });
      expect(namedVariables(result.stderr)).toEqual(['ZEGO_CALL_DEADLINE_MS']);
    },
    TIMEOUT,
  );
});

describe('good configuration from files (mounted Secrets)', () => {
  const fake = withFakeZim({ appId: APP_ID, serverSecret: SECRET });

  it(
    'reads the secret and newline-separated, commented API keys from files; signs with the trimmed secret',
    async () => {
      const secretFile = path.join(tmp, 'zego-secret');
      writeFileSync(secretFile, `${SECRET}\n`);
      const keysFile = path.join(tmp, 'api-keys');
      writeFileSync(keysFile, `# clients\n${apiKeyEntry('svc-one', KEY)}\n\n${apiKeyEntry('svc-two', KEY_2)}\n`);
      const gateway = await startGateway({
        ZEGO_APP_ID: String(APP_ID),
        ZEGO_SERVER_SECRET_FILE: secretFile,
        ZEGO_API_BASE_URL: fake.url,
        API_KEYS_FILE: keysFile,
        ZEGO_DEFAULT_FROM_USER_ID: 'ops-default',
      });
      const post = (key: string, roomId: string): Promise<Response> =>
        fetch(`${gateway.url}/rooms`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ roomId }),
        });
      const responses = [await post(KEY, 'cfg-room-1'), await post(KEY_2, 'cfg-room-2'), await post('sk-unknown', 'cfg-room-3')];
      expect(responses.map((r) => r.status)).toEqual([201, 201, 401]);
      expect(fake.calls.map((c) => c.code)).toEqual([0, 0]);
      expect(fake.createdRooms).toEqual(['cfg-room-1', 'cfg-room-2']);

      const exitCode = await gateway.stop();
      outputs.push({ name: 'file-configured gateway', stdout: gateway.stdout(), stderr: gateway.stderr() });
      // A graceful shutdown: requests drained, modules stopped, exit code 0.
      expect(exitCode).toBe(0);
      expect(await gateway.exited).toEqual({ code: 0, signal: null });
      expect(gateway.isRunning()).toBe(false);
    },
    TIMEOUT,
  );
});

// Runs last.
describe('secrets', () => {
  it('no configuration run printed the secret, a key, or the URL password', () => {
    expect(outputs.length).toBeGreaterThanOrEqual(9);
    const haystacks = Object.fromEntries(
      outputs.flatMap((o) => [
        [`${o.name} stdout`, o.stdout],
        [`${o.name} stderr`, o.stderr],
      ]),
    );
    expect(
      findLeaks(haystacks, {
        ZEGO_SERVER_SECRET: SECRET,
        'API key': KEY,
        'second API key': KEY_2,
        'URL password': URL_PASSWORD,
      }),
    ).toEqual([]);
  });
});
