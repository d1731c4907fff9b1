import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { loadConfig, type AppConfig } from './app-config.js';
import { ConfigError } from './config-error.js';
import type { Env } from './env-reader.js';
import { Secret } from './secret.js';

const SECRET = 'SENTINEL-server-secret-b71e0c';
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const HASH_A = sha256('SENTINEL-api-key-a');
const HASH_B = sha256('SENTINEL-api-key-b');

const VALID: Env = {
  ZEGO_APP_ID: '1234567',
  ZEGO_SERVER_SECRET: SECRET,
  API_KEYS: `orders:${HASH_A}`,
};

let dir: string;
function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'app-config-spec-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The ConfigError the environment gets, or a failure when it loads. */
function configError(env: Env): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

/** The distinct variables named by the error, sorted. */
function badVariables(env: Env): string[] {
  const error = configError(env);
  for (const problem of error.problems) expect(error.message).toContain(`${problem.variable}: ${problem.reason}`);
  return [...new Set(error.problems.map((p) => p.variable))].sort();
}

function without(env: Env, ...names: string[]): Env {
  const copy = { ...env };
  for (const name of names) delete copy[name];
  return copy;
}

describe('loadConfig with a valid environment', () => {
  it('gives a typed configuration with the documented defaults', () => {
    const config = loadConfig(VALID);
    expect(config.http).toEqual({ port: 3000, bodyLimitBytes: 64 * 1024 });
    expect(config.zego.appId).toBe(1234567);
    expect(config.zego.serverSecret).toBeInstanceOf(Secret);
    expect(config.zego.serverSecret.reveal()).toBe(SECRET);
    expect(config.zego.serverSecretFile).toBeUndefined();
    expect(config.zego.apiBaseUrl).toBe('https://zim-api.zego.im/');
    expect(config.zego.timeoutMs).toBe(5000);
    expect(config.zego.callDeadlineMs).toBe(10_000);
    expect(config.zego.maxAttempts).toBe(3);
    expect(config.zego.defaultFromUserId).toBeUndefined();
    expect(config.zego.maxRoomAttributes).toBe(20);
    expect(config.auth.apiKeys.map((k) => k.clientId)).toEqual(['orders']);
    expect(config.auth.apiKeysFile).toBeUndefined();
    expect(config.outbound).toEqual({ qpsLimit: 20, windowMs: 1000, maxWaitMs: 2000, safetyMarginMs: 20 });
    expect(config.redis.url).toBeUndefined();
  });

  it('reads every variable that is set', () => {
    const config = loadConfig({
      ...VALID,
      PORT: '8080',
      ZEGO_API_BASE_URL: 'https://zim-api-sgp.zego.im',
      ZEGO_TIMEOUT_MS: '2500',
      ZEGO_CALL_DEADLINE_MS: '7000',
      ZEGO_MAX_ATTEMPTS: '5',
      ZEGO_DEFAULT_FROM_USER_ID: 'ops bot#1',
      ZEGO_MAX_ROOM_ATTRIBUTES: '16',
      ZEGO_QPS_LIMIT: '10',
      ZEGO_QPS_WINDOW_MS: '500',
      RATE_LIMIT_MAX_WAIT_MS: '0',
      RATE_LIMIT_SAFETY_MARGIN_MS: '5',
      REDIS_URL: 'rediss://cache.internal:6380/2',
    });
    expect(config.http.port).toBe(8080);
    expect(config.zego).toMatchObject({
      apiBaseUrl: 'https://zim-api-sgp.zego.im/',
      timeoutMs: 2500,
      callDeadlineMs: 7000,
      maxAttempts: 5,
      defaultFromUserId: 'ops bot#1',
      maxRoomAttributes: 16,
    });
    expect(config.outbound).toEqual({ qpsLimit: 10, windowMs: 500, maxWaitMs: 0, safetyMarginMs: 5 });
    expect(config.redis.url).toBe('rediss://cache.internal:6380/2');
  });

  it('trims values and treats a blank optional value as unset', () => {
    const config = loadConfig({ ...VALID, ZEGO_APP_ID: ' 42 ', PORT: '  ', REDIS_URL: '' });
    expect(config.zego.appId).toBe(42);
    expect(config.http.port).toBe(3000);
    expect(config.redis.url).toBeUndefined();
  });

  it('accepts the app id bounds of a uint32', () => {
    expect(loadConfig({ ...VALID, ZEGO_APP_ID: '1' }).zego.appId).toBe(1);
    expect(loadConfig({ ...VALID, ZEGO_APP_ID: String(2 ** 32 - 1) }).zego.appId).toBe(2 ** 32 - 1);
  });

  it('accepts a call deadline equal to the timeout', () => {
    const config = loadConfig({ ...VALID, ZEGO_TIMEOUT_MS: '3000', ZEGO_CALL_DEADLINE_MS: '3000' });
    expect(config.zego.callDeadlineMs).toBe(3000);
  });

  it('keeps a base URL path and gives it a trailing slash only at the root', () => {
    expect(loadConfig({ ...VALID, ZEGO_API_BASE_URL: 'http://127.0.0.1:9999' }).zego.apiBaseUrl).toBe(
      'http://127.0.0.1:9999/',
    );
    expect(loadConfig({ ...VALID, ZEGO_API_BASE_URL: 'http://proxy:80/zim/' }).zego.apiBaseUrl).toBe(
      'http://proxy/zim/',
    );
  });

  it('is deeply frozen', () => {
    const config = loadConfig(VALID);
    const objects: object[] = [
      config,
      config.http,
      config.zego,
      config.auth,
      config.auth.apiKeys,
      config.auth.apiKeys[0]!,
      config.outbound,
      config.redis,
    ];
    for (const object of objects) expect(Object.isFrozen(object)).toBe(true);
    expect(() => {
      (config.http as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.auth.apiKeys as unknown as unknown[]).push({});
    }).toThrow(TypeError);
    expect(config.http.port).toBe(3000);
  });

  describe('the server secret from a file', () => {
    it('is read, with the trailing newline of the file trimmed, and the file remembered', () => {
      const path = file('secret-newline', `${SECRET}\n`);
      const config = loadConfig({ ...without(VALID, 'ZEGO_SERVER_SECRET'), ZEGO_SERVER_SECRET_FILE: path });
      expect(config.zego.serverSecret.reveal()).toBe(SECRET);
      expect(config.zego.serverSecretFile).toBe(path);
    });

    it('is trimmed of a Windows line ending too', () => {
      const path = file('secret-crlf', `${SECRET}\r\n`);
      const config = loadConfig({ ...without(VALID, 'ZEGO_SERVER_SECRET'), ZEGO_SERVER_SECRET_FILE: path });
      expect(config.zego.serverSecret.reveal()).toBe(SECRET);
    });
  });

  describe('API keys from a file', () => {
    it('skips comments and blank lines and remembers the file', () => {
      const path = file(
        'api-keys',
        ['# gateway clients', '', `orders:${HASH_A}`, '  # billing, since 2024', `billing:${HASH_B}`, ''].join('\n'),
      );
      const config = loadConfig({ ...without(VALID, 'API_KEYS'), API_KEYS_FILE: path });
      expect(config.auth.apiKeys.map((k) => k.clientId)).toEqual(['orders', 'billing']);
      expect(config.auth.apiKeysFile).toBe(path);
    });

    it('takes entries separated by commas and by newlines', () => {
      const path = file('api-keys-mixed', `orders:${HASH_A},billing:${HASH_B}\nreports:${sha256('c')}\n`);
      const config = loadConfig({ ...without(VALID, 'API_KEYS'), API_KEYS_FILE: path });
      expect(config.auth.apiKeys.map((k) => k.clientId)).toEqual(['orders', 'billing', 'reports']);
    });
  });
});

describe('loadConfig with a bad environment', () => {
  it('names a missing ZEGO_APP_ID', () => {
    expect(badVariables(without(VALID, 'ZEGO_APP_ID'))).toEqual(['ZEGO_APP_ID']);
    expect(badVariables({ ...VALID, ZEGO_APP_ID: '   ' })).toEqual(['ZEGO_APP_ID']);
  });

  it.each(['abc', '12a', '1.5', '-1', '+5', '1e3', '0', '4294967296', '99999999999999999999'])(
    'names ZEGO_APP_ID %j',
    (appId) => {
      expect(badVariables({ ...VALID, ZEGO_APP_ID: appId })).toEqual(['ZEGO_APP_ID']);
    },
  );

  it.each([
    ['PORT', '65536'],
    ['PORT', 'http'],
    ['ZEGO_TIMEOUT_MS', '99'],
    ['ZEGO_TIMEOUT_MS', '5s'],
    ['ZEGO_MAX_ATTEMPTS', '0'],
    ['ZEGO_MAX_ATTEMPTS', '11'],
    ['ZEGO_MAX_ROOM_ATTRIBUTES', '1001'],
    ['ZEGO_QPS_LIMIT', '0'],
    ['ZEGO_QPS_WINDOW_MS', '9'],
    ['RATE_LIMIT_MAX_WAIT_MS', '-1'],
    ['RATE_LIMIT_SAFETY_MARGIN_MS', '10001'],
  ])('names %s=%j', (variable, value) => {
    expect(badVariables({ ...VALID, [variable]: value })).toEqual([variable]);
  });

  it('names the secret when both ZEGO_SERVER_SECRET and ZEGO_SERVER_SECRET_FILE are set', () => {
    const path = file('secret-both', SECRET);
    expect(badVariables({ ...VALID, ZEGO_SERVER_SECRET_FILE: path })).toEqual(['ZEGO_SERVER_SECRET']);
  });

  it('names the secret when neither is set', () => {
    const error = configError(without(VALID, 'ZEGO_SERVER_SECRET'));
    expect(error.problems.map((p) => p.variable)).toEqual(['ZEGO_SERVER_SECRET']);
    expect(error.problems[0]!.reason).toContain('ZEGO_SERVER_SECRET_FILE');
  });

  it('names ZEGO_SERVER_SECRET_FILE when the file does not exist', () => {
    const env = { ...without(VALID, 'ZEGO_SERVER_SECRET'), ZEGO_SERVER_SECRET_FILE: join(dir, 'missing') };
    const error = configError(env);
    expect(error.problems.map((p) => p.variable)).toEqual(['ZEGO_SERVER_SECRET_FILE']);
    expect(error.problems[0]!.reason).toContain('ENOENT');
  });

  it('names ZEGO_SERVER_SECRET_FILE when it names a directory', () => {
    const sub = join(dir, 'a-directory');
    mkdirSync(sub, { recursive: true });
    const env = { ...without(VALID, 'ZEGO_SERVER_SECRET'), ZEGO_SERVER_SECRET_FILE: sub };
    expect(badVariables(env)).toEqual(['ZEGO_SERVER_SECRET_FILE']);
  });

  it.each([
    ['empty', ''],
    ['blank', ' \n\t\n'],
  ])('names ZEGO_SERVER_SECRET_FILE when the file is %s', (label, content) => {
    const path = file(`secret-${label}`, content);
    const env = { ...without(VALID, 'ZEGO_SERVER_SECRET'), ZEGO_SERVER_SECRET_FILE: path };
    const error = configError(env);
    expect(error.problems.map((p) => p.variable)).toEqual(['ZEGO_SERVER_SECRET_FILE']);
    expect(error.problems[0]!.reason).toMatch(/empty/);
  });

  it.each([
    ['not a URL', 'zim-api.zego.im'],
    ['another protocol', 'ftp://zim-api.zego.im'],
    ['a query', 'https://zim-api.zego.im/?Action=CreateRoom'],
    ['a fragment', 'https://zim-api.zego.im/#top'],
    ['credentials', 'https://user:SENTINEL-password@zim-api.zego.im'],
  ])('names ZEGO_API_BASE_URL with %s', (_label, url) => {
    const error = configError({ ...VALID, ZEGO_API_BASE_URL: url });
    expect(error.problems.map((p) => p.variable)).toEqual(['ZEGO_API_BASE_URL']);
    expect(error.message).not.toContain(url);
    expect(error.message).not.toContain('SENTINEL');
  });

  it.each(['ops*bot', 'x'.repeat(33), 'opérateur'])('names ZEGO_DEFAULT_FROM_USER_ID %j', (id) => {
    expect(badVariables({ ...VALID, ZEGO_DEFAULT_FROM_USER_ID: id })).toEqual(['ZEGO_DEFAULT_FROM_USER_ID']);
  });

  it.each([
    ['without a colon', `orders${HASH_A}`],
    ['with a short hash', `orders:${HASH_A.slice(1)}`],
    ['with a repeated client id', `orders:${HASH_A},orders:${HASH_B}`],
    ['with a repeated hash', `orders:${HASH_A}\nbilling:${HASH_A}`],
    ['without any entry', ' , '],
  ])('names API_KEYS %s', (_label, apiKeys) => {
    expect(badVariables({ ...VALID, API_KEYS: apiKeys })).toEqual(['API_KEYS']);
  });

  it('names API_KEYS_FILE, not API_KEYS, for a bad entry in the file', () => {
    const path = file('api-keys-bad', `# comment\norders:${HASH_A}\nbroken\n`);
    const error = configError({ ...without(VALID, 'API_KEYS'), API_KEYS_FILE: path });
    expect(error.problems).toEqual([{ variable: 'API_KEYS_FILE', reason: expect.stringMatching(/^entry 2 /) }]);
  });

  it('names API_KEYS when neither it nor API_KEYS_FILE is set, and when both are', () => {
    expect(badVariables(without(VALID, 'API_KEYS'))).toEqual(['API_KEYS']);
    const path = file('api-keys-both', `orders:${HASH_A}`);
    expect(badVariables({ ...VALID, API_KEYS_FILE: path })).toEqual(['API_KEYS']);
  });

  it('names API_KEYS_FILE when the file is missing', () => {
    expect(badVariables({ ...without(VALID, 'API_KEYS'), API_KEYS_FILE: join(dir, 'nope') })).toEqual([
      'API_KEYS_FILE',
    ]);
  });

  it.each(['http://cache:6379', 'cache:6379', 'not a url'])('names REDIS_URL %j', (url) => {
    expect(badVariables({ ...VALID, REDIS_URL: url })).toEqual(['REDIS_URL']);
  });

  it('names ZEGO_CALL_DEADLINE_MS when it is shorter than ZEGO_TIMEOUT_MS', () => {
    expect(badVariables({ ...VALID, ZEGO_TIMEOUT_MS: '5000', ZEGO_CALL_DEADLINE_MS: '4999' })).toEqual([
      'ZEGO_CALL_DEADLINE_MS',
    ]);
    // Also when the deadline is left at its default and the timeout is raised past it.
    expect(badVariables({ ...VALID, ZEGO_TIMEOUT_MS: '20000' })).toEqual(['ZEGO_CALL_DEADLINE_MS']);
  });

  it('reports several problems together in one error', () => {
    const env: Env = {
      ZEGO_SERVER_SECRET: SECRET,
      API_KEYS: `orders:${HASH_A},broken`,
      ZEGO_API_BASE_URL: 'https://zim-api.zego.im/?x=1',
      ZEGO_TIMEOUT_MS: '6000',
      ZEGO_CALL_DEADLINE_MS: '5000',
      ZEGO_DEFAULT_FROM_USER_ID: 'a/b',
      REDIS_URL: 'memcached://x',
      PORT: '-1',
    };
    expect(badVariables(env)).toEqual(
      [
        'ZEGO_APP_ID',
        'API_KEYS',
        'ZEGO_API_BASE_URL',
        'ZEGO_CALL_DEADLINE_MS',
        'ZEGO_DEFAULT_FROM_USER_ID',
        'REDIS_URL',
        'PORT',
      ].sort(),
    );
    const error = configError(env);
    expect(error.name).toBe('ConfigError');
    expect(error.message.split('\n')[0]).toBe('Invalid configuration:');
    expect(error.message.split('\n')).toHaveLength(1 + error.problems.length);
  });

  describe('never shows a secret or an API key hash', () => {
    function everyRendering(error: ConfigError): string {
      return [error.message, String(error.stack), JSON.stringify(error.problems), inspect(error, { depth: Infinity })].join('\n');
    }

    it('when the secret is given twice', () => {
      const path = file('secret-twice', `${SECRET}-from-file`);
      const text = everyRendering(configError({ ...VALID, ZEGO_SERVER_SECRET_FILE: path, ZEGO_APP_ID: 'x' }));
      expect(text).not.toContain('SENTINEL');
    });

    it('when the secret is fine and other variables are not', () => {
      const text = everyRendering(configError({ ...VALID, ZEGO_APP_ID: 'SENTINEL-app', REDIS_URL: 'SENTINEL-redis' }));
      expect(text).not.toContain('SENTINEL');
      expect(text).not.toContain(SECRET);
    });

    it('when the secret file is fine and other variables are not', () => {
      const path = file('secret-ok', `${SECRET}\n`);
      const env = { ...without(VALID, 'ZEGO_SERVER_SECRET'), ZEGO_SERVER_SECRET_FILE: path, PORT: 'x' };
      expect(everyRendering(configError(env))).not.toContain(SECRET);
    });

    it('when API key entries are bad', () => {
      const apiKeys = [
        `orders:${HASH_A}`,
        `billing:${HASH_A}`,
        `orders:${HASH_B}`,
        `reports:${HASH_B.slice(0, 40)}`,
        'SENTINEL-a-raw-key-pasted-by-mistake',
      ].join(',');
      const text = everyRendering(configError({ ...VALID, API_KEYS: apiKeys }));
      expect(text).not.toContain(HASH_A);
      expect(text).not.toContain(HASH_B);
      expect(text).not.toContain(HASH_B.slice(0, 40));
      expect(text).not.toContain('SENTINEL');
    });

    it('nor does the loaded configuration', () => {
      const config: AppConfig = loadConfig(VALID);
      const rendered = [JSON.stringify(config), inspect(config, { depth: Infinity, showHidden: true })].join('\n');
      expect(rendered).not.toContain(SECRET);
    });
  });
});
