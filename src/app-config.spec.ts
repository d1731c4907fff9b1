import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { loadConfig, type AppConfig } from './app-config.js';
import { ConfigError } from './config/config-error.js';
import type { Env } from './config/env-reader.js';
import { Secret } from './config/secret.js';

const SECRET = 'SENTINEL-server-secret-b71e0c';
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const HASH_A = sha256('SENTINEL-api-key-a');
const HASH_B = sha256('SENTINEL-api-key-b');
const REDIS_PASSWORD = 'CANARY-redis-password-5e93';
const SENTINEL_PASSWORD = 'CANARY-sentinel-password-a07c';

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

describe('loadConfig: batches', () => {
  it('reads every batch variable, the callback secret kept as a Secret', () => {
    const { batches, http } = loadConfig({
      ...VALID,
      BATCH_MAX_ROOMS: '500',
      BATCH_MAX_PENDING_ROOMS_PER_CLIENT: '2000',
      BATCH_TTL_S: '3600',
      BATCH_CONCURRENCY: '3',
      BATCH_BODY_LIMIT_BYTES: '1048576',
      BATCH_CALLBACK_HOSTS: 'Hooks.Internal.example, events.internal.example:8443',
      BATCH_CALLBACK_SECRET: 'SENTINEL-callback-0123456789',
    });
    expect(batches).toMatchObject({ maxRooms: 500, maxPendingRoomsPerClient: 2000, ttlSeconds: 3600, concurrency: 3, bodyLimitBytes: 1_048_576 });
    expect(batches.callbackHosts).toEqual(['hooks.internal.example', 'events.internal.example:8443']);
    expect(batches.callbackSecret).toBeInstanceOf(Secret);
    expect(JSON.stringify(batches)).not.toContain('SENTINEL-callback');
    // 500 rooms of 20 attributes at most: 2 + 500 * 86 keys, and twice that for the cap.
    expect(http.routeBodyLimits).toEqual([{ method: 'POST', path: '/rooms/batches', bytes: 1_048_576, totalKeys: 86_004 }]);
  });

  it('names each bad batch variable', () => {
    expect(() =>
      loadConfig({
        ...VALID,
        BATCH_MAX_ROOMS: '20000',
        BATCH_MAX_PENDING_ROOMS_PER_CLIENT: '10',
        BATCH_CALLBACK_HOSTS: 'https://hooks.example/path',
      }),
    ).toThrow(/BATCH_MAX_ROOMS[\s\S]*BATCH_CALLBACK_HOSTS[\s\S]*BATCH_CALLBACK_SECRET/);
    expect(() => loadConfig({ ...VALID, BATCH_CALLBACK_HOSTS: 'hooks.example', BATCH_CALLBACK_SECRET: 'short' })).toThrow(
      /BATCH_CALLBACK_SECRET: must be at least 16 characters/,
    );
    expect(() => loadConfig({ ...VALID, BATCH_MAX_PENDING_ROOMS_PER_CLIENT: '10' })).toThrow(
      /BATCH_MAX_PENDING_ROOMS_PER_CLIENT: must be at least BATCH_MAX_ROOMS/,
    );
  });
});

describe('loadConfig with a valid environment', () => {
  it('gives a typed configuration with the documented defaults', () => {
    const config = loadConfig(VALID);
    expect(config.http).toEqual({
      port: 3000,
      bodyLimitBytes: 64 * 1024,
      // Twice the largest valid body: 5 fields and 20 attributes of 3.
      bodyLimitTotalKeys: 170,
      shutdownGraceMs: 5000,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 65_000,
      maxConnections: 1000,
      routeBodyLimits: [{ method: 'POST', path: '/rooms/batches', bytes: 4 * 1024 * 1024, totalKeys: 172_004 }],
    });
    expect(config.logging).toEqual({ level: 'info', refusals: 'sampled' });
    expect(config.zego.appId).toBe(1234567);
    expect(config.zego.serverSecret).toBeInstanceOf(Secret);
    expect(config.zego.serverSecret.reveal()).toBe(SECRET);
    expect(config.zego.serverSecretFile).toBeUndefined();
    expect(config.zego.apiBaseUrl).toBe('https://zim-api.zego.im/');
    expect(config.zego.timeoutMs).toBe(5000);
    expect(config.zego.callDeadlineMs).toBe(10_000);
    expect(config.zego.maxAttempts).toBe(3);
    expect(config.zego.keepAliveIdleMs).toBe(4000);
    expect(config.zego.warmConnections).toBe(true);
    expect(config.zego.defaultFromUserId).toBeUndefined();
    expect(config.zego.maxRoomAttributes).toBe(20);
    expect(config.auth.apiKeys.map((k) => k.clientId)).toEqual(['orders']);
    expect(config.auth.apiKeysFile).toBeUndefined();
    expect(config.outbound).toEqual({
      qpsLimit: 20,
      windowMs: 1000,
      maxWaitMs: 2000,
      safetyMarginMs: 30,
      maxWaitMsBatch: 8000,
      batchMinShare: 0.1,
      weights: {},
      priorities: {},
    });
    expect(config.redisDown).toEqual({ fallback: 'local', assumedReplicas: 3, slowRoundTripMs: 75 });
    expect(config.clientQuota).toEqual({ perSecond: 10, overrides: {}, refusalDelayMs: 100 });
    expect(config.idempotency).toEqual({ ttlSeconds: 86_400 });
    expect(config.batches).toEqual({
      maxRooms: 1000,
      maxPendingRoomsPerClient: 10_000,
      ttlSeconds: 604_800,
      concurrency: 8,
      bodyLimitBytes: 4 * 1024 * 1024,
      callbackHosts: [],
    });
    expect(Object.keys(config.clientQuota.overrides)).toEqual([]);
    expect(config.redis).toBeUndefined();
  });

  it('reads every variable that is set', () => {
    const config = loadConfig({
      ...VALID,
      PORT: '8080',
      SHUTDOWN_GRACE_MS: '0',
      HTTP_HEADERS_TIMEOUT_MS: '4000',
      HTTP_REQUEST_TIMEOUT_MS: '9000',
      HTTP_KEEP_ALIVE_TIMEOUT_MS: '75000',
      HTTP_MAX_CONNECTIONS: '250',
      LOG_LEVEL: 'debug',
      LOG_REFUSALS: 'all',
      ZEGO_API_BASE_URL: 'https://zim-api-sgp.zego.im',
      ZEGO_TIMEOUT_MS: '2500',
      ZEGO_CALL_DEADLINE_MS: '7000',
      ZEGO_MAX_ATTEMPTS: '5',
      ZEGO_KEEPALIVE_IDLE_MS: '30000',
      ZEGO_WARM_CONNECTIONS: 'false',
      ZEGO_DEFAULT_FROM_USER_ID: 'ops bot#1',
      ZEGO_MAX_ROOM_ATTRIBUTES: '16',
      ZEGO_QPS_LIMIT: '10',
      ZEGO_QPS_WINDOW_MS: '500',
      RATE_LIMIT_MAX_WAIT_MS: '0',
      RATE_LIMIT_SAFETY_MARGIN_MS: '5',
      RATE_LIMIT_ON_REDIS_DOWN: 'reject',
      RATE_LIMIT_REPLICAS: '7',
      RATE_LIMIT_SLOW_REDIS_MS: '60',
      CLIENT_RATE_LIMIT: '40',
      CLIENT_RATE_LIMITS: 'client-a:5,client-b:15',
      CLIENT_QUOTA_REFUSAL_DELAY_MS: '0',
      IDEMPOTENCY_TTL_S: '3600',
      REDIS_URL: 'rediss://cache.internal:6380/2',
      REDIS_KEY_PREFIX: 'staging:zim-gw',
      REDIS_COMMAND_TIMEOUT_MS: '100',
      REDIS_CONNECT_TIMEOUT_MS: '3000',
    });
    expect(config.http.port).toBe(8080);
    expect(config.http.shutdownGraceMs).toBe(0);
    expect(config.http.headersTimeoutMs).toBe(4000);
    expect(config.http.requestTimeoutMs).toBe(9000);
    expect(config.http.keepAliveTimeoutMs).toBe(75_000);
    expect(config.http.maxConnections).toBe(250);
    // The key caps follow the attributes allowed: twice 5 + 16 * 4, and for 1000 rooms twice 2 + 1000 * 70.
    expect(config.http.bodyLimitTotalKeys).toBe(138);
    expect(config.http.routeBodyLimits[0]!.totalKeys).toBe(140_004);
    expect(config.logging).toEqual({ level: 'debug', refusals: 'all' });
    expect(config.zego).toMatchObject({
      apiBaseUrl: 'https://zim-api-sgp.zego.im/',
      timeoutMs: 2500,
      callDeadlineMs: 7000,
      maxAttempts: 5,
      keepAliveIdleMs: 30_000,
      warmConnections: false,
      defaultFromUserId: 'ops bot#1',
      maxRoomAttributes: 16,
    });
    expect(config.outbound).toEqual({
      qpsLimit: 10,
      windowMs: 500,
      maxWaitMs: 0,
      safetyMarginMs: 5,
      maxWaitMsBatch: 8000,
      batchMinShare: 0.1,
      weights: {},
      priorities: {},
    });
    expect(config.redisDown).toEqual({ fallback: 'reject', assumedReplicas: 7, slowRoundTripMs: 60 });
    expect(config.clientQuota).toEqual({ perSecond: 40, overrides: { 'client-a': 5, 'client-b': 15 }, refusalDelayMs: 0 });
    expect(config.idempotency).toEqual({ ttlSeconds: 3600 });
    expect(config.redis).toEqual({
      connection: { kind: 'url', url: expect.any(Secret) },
      keyPrefix: 'staging:zim-gw',
      commandTimeoutMs: 100,
      connectTimeoutMs: 3000,
    });
    const connection = config.redis!.connection;
    expect(connection.kind === 'url' && connection.url.reveal()).toBe('rediss://cache.internal:6380/2');
  });

  it('reads Redis behind sentinels, IPv6 included, with its credentials as Secrets', () => {
    const config = loadConfig({
      ...VALID,
      REDIS_SENTINELS: 'sentinel-0.redis:26379,[fd00::7]:26380',
      REDIS_SENTINEL_MASTER: 'gateway-primary',
      REDIS_USERNAME: 'gateway',
      REDIS_PASSWORD: REDIS_PASSWORD,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
      REDIS_TLS: 'true',
    });
    expect(config.redis).toEqual({
      connection: {
        kind: 'sentinel',
        sentinels: [
          { host: 'sentinel-0.redis', port: 26379 },
          { host: 'fd00::7', port: 26380 },
        ],
        masterName: 'gateway-primary',
        username: 'gateway',
        password: expect.any(Secret),
        sentinelPassword: expect.any(Secret),
        tls: true,
      },
      keyPrefix: 'zim-room-gateway',
      commandTimeoutMs: 250,
      connectTimeoutMs: 1000,
    });
    const connection = config.redis!.connection;
    if (connection.kind !== 'sentinel') throw new Error('expected a sentinel connection');
    expect(connection.password!.reveal()).toBe(REDIS_PASSWORD);
    expect(connection.sentinelPassword!.reveal()).toBe(SENTINEL_PASSWORD);
  });

  it('accepts client quota overrides for clients not (yet) in API_KEYS, one per line too', () => {
    const config = loadConfig({ ...VALID, CLIENT_RATE_LIMITS: 'orders:1\nnot-yet-rotated-in:100000\n' });
    expect(config.clientQuota.overrides).toEqual({ orders: 1, 'not-yet-rotated-in': 100_000 });
    expect(Object.getPrototypeOf(config.clientQuota.overrides)).toBeNull();
    expect(config.clientQuota.overrides['toString']).toBeUndefined();
  });

  it('accepts the bounds of the new limits', () => {
    const low = loadConfig({ ...VALID, RATE_LIMIT_REPLICAS: '1', CLIENT_RATE_LIMIT: '1' });
    expect([low.redisDown.assumedReplicas, low.clientQuota.perSecond]).toEqual([1, 1]);
    const high = loadConfig({ ...VALID, RATE_LIMIT_REPLICAS: '1000', CLIENT_RATE_LIMIT: '100000' });
    expect([high.redisDown.assumedReplicas, high.clientQuota.perSecond]).toEqual([1000, 100_000]);
    expect(loadConfig({ ...VALID, RATE_LIMIT_ON_REDIS_DOWN: 'local' }).redisDown.fallback).toBe('local');
  });

  it('accepts the bounds of IDEMPOTENCY_TTL_S: a minute to 30 days', () => {
    expect(loadConfig({ ...VALID, IDEMPOTENCY_TTL_S: '60' }).idempotency.ttlSeconds).toBe(60);
    expect(loadConfig({ ...VALID, IDEMPOTENCY_TTL_S: '2592000' }).idempotency.ttlSeconds).toBe(2_592_000);
  });

  it('trims values and treats a blank optional value as unset', () => {
    const config = loadConfig({
      ...VALID,
      ZEGO_APP_ID: ' 42 ',
      PORT: '  ',
      REDIS_URL: '',
      REDIS_SENTINELS: ' ',
      CLIENT_RATE_LIMITS: ' ',
      RATE_LIMIT_ON_REDIS_DOWN: ' reject ',
    });
    expect(config.zego.appId).toBe(42);
    expect(config.http.port).toBe(3000);
    expect(config.redis).toBeUndefined();
    expect(config.clientQuota.overrides).toEqual({});
    expect(config.redisDown.fallback).toBe('reject');
  });

  it('accepts the app id bounds of a uint32', () => {
    expect(loadConfig({ ...VALID, ZEGO_APP_ID: '1' }).zego.appId).toBe(1);
    expect(loadConfig({ ...VALID, ZEGO_APP_ID: String(2 ** 32 - 1) }).zego.appId).toBe(2 ** 32 - 1);
  });

  it('accepts the bounds of the HTTP timeouts, and a request timeout equal to the headers timeout', () => {
    const low = loadConfig({ ...VALID, HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '1000' });
    expect([low.http.headersTimeoutMs, low.http.requestTimeoutMs]).toEqual([1000, 1000]);
    const high = loadConfig({ ...VALID, HTTP_HEADERS_TIMEOUT_MS: '600000', HTTP_REQUEST_TIMEOUT_MS: '600000' });
    expect([high.http.headersTimeoutMs, high.http.requestTimeoutMs]).toEqual([600_000, 600_000]);
  });

  it('accepts the bounds of the keep-alive timeout and the connection cap', () => {
    const low = loadConfig({ ...VALID, HTTP_KEEP_ALIVE_TIMEOUT_MS: '1000', HTTP_MAX_CONNECTIONS: '1' });
    expect([low.http.keepAliveTimeoutMs, low.http.maxConnections]).toEqual([1000, 1]);
    const high = loadConfig({ ...VALID, HTTP_KEEP_ALIVE_TIMEOUT_MS: '600000', HTTP_MAX_CONNECTIONS: '100000' });
    expect([high.http.keepAliveTimeoutMs, high.http.maxConnections]).toEqual([600_000, 100_000]);
  });

  it('does not tie the request timeout to the vendor deadline (it covers receiving the request only)', () => {
    const config = loadConfig({
      ...VALID,
      HTTP_HEADERS_TIMEOUT_MS: '1000',
      HTTP_REQUEST_TIMEOUT_MS: '2000',
      ZEGO_CALL_DEADLINE_MS: '60000',
    });
    expect(config.http.requestTimeoutMs).toBe(2000);
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
    const config = loadConfig({ ...VALID, CLIENT_RATE_LIMITS: 'orders:5' });
    const objects: object[] = [
      config,
      config.http,
      config.zego,
      config.auth,
      config.auth.apiKeys,
      config.auth.apiKeys[0]!,
      config.outbound,
      config.clientQuota,
      config.clientQuota.overrides,
    ];
    for (const object of objects) expect(Object.isFrozen(object)).toBe(true);
    expect(() => {
      (config.clientQuota.overrides as Record<string, number>)['orders'] = 500;
    }).toThrow(TypeError);
    expect(config.clientQuota.overrides['orders']).toBe(5);
    expect(() => {
      (config.http as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.auth.apiKeys as unknown as unknown[]).push({});
    }).toThrow(TypeError);
    expect(config.http.port).toBe(3000);
  });

  it('is deeply frozen with Redis settings too, and its Secrets still reveal', () => {
    const url = loadConfig({ ...VALID, REDIS_URL: 'redis://cache:6379' });
    const sentinel = loadConfig({
      ...VALID,
      REDIS_SENTINELS: 'a:26379,b:26379',
      REDIS_SENTINEL_MASTER: 'mymaster',
      REDIS_PASSWORD: REDIS_PASSWORD,
    });
    const sentinelConnection = sentinel.redis!.connection;
    if (sentinelConnection.kind !== 'sentinel') throw new Error('expected a sentinel connection');
    const objects: object[] = [
      url.redis!,
      url.redis!.connection,
      sentinel.redis!,
      sentinelConnection,
      sentinelConnection.sentinels,
      sentinelConnection.sentinels[1]!,
    ];
    for (const object of objects) expect(Object.isFrozen(object)).toBe(true);
    expect(() => {
      (sentinelConnection.sentinels as Array<{ host: string; port: number }>).push({ host: 'c', port: 1 });
    }).toThrow(TypeError);
    expect(() => {
      (sentinelConnection.sentinels[0] as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(url.redis!.connection.kind === 'url' && url.redis!.connection.url.reveal()).toBe('redis://cache:6379');
    expect(sentinelConnection.password!.reveal()).toBe(REDIS_PASSWORD);
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
    ['SHUTDOWN_GRACE_MS', '120001'],
    ['SHUTDOWN_GRACE_MS', '5s'],
    ['HTTP_HEADERS_TIMEOUT_MS', '999'],
    ['HTTP_HEADERS_TIMEOUT_MS', '0'],
    ['HTTP_HEADERS_TIMEOUT_MS', '600001'],
    ['HTTP_HEADERS_TIMEOUT_MS', '10s'],
    ['HTTP_REQUEST_TIMEOUT_MS', '999'],
    ['HTTP_REQUEST_TIMEOUT_MS', '600001'],
    ['HTTP_REQUEST_TIMEOUT_MS', '9999'],
    ['HTTP_KEEP_ALIVE_TIMEOUT_MS', '999'],
    ['HTTP_KEEP_ALIVE_TIMEOUT_MS', '0'],
    ['HTTP_KEEP_ALIVE_TIMEOUT_MS', '600001'],
    ['HTTP_KEEP_ALIVE_TIMEOUT_MS', '65s'],
    ['HTTP_MAX_CONNECTIONS', '0'],
    ['HTTP_MAX_CONNECTIONS', '100001'],
    ['HTTP_MAX_CONNECTIONS', 'many'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_LEVEL', 'INFO'],
    ['LOG_REFUSALS', 'some'],
    ['ZEGO_TIMEOUT_MS', '99'],
    ['ZEGO_TIMEOUT_MS', '5s'],
    ['ZEGO_MAX_ATTEMPTS', '0'],
    ['ZEGO_MAX_ATTEMPTS', '11'],
    ['ZEGO_KEEPALIVE_IDLE_MS', '99'],
    ['ZEGO_KEEPALIVE_IDLE_MS', '600001'],
    ['ZEGO_WARM_CONNECTIONS', 'yes please'],
    ['ZEGO_MAX_ROOM_ATTRIBUTES', '1001'],
    ['ZEGO_QPS_LIMIT', '0'],
    ['ZEGO_QPS_WINDOW_MS', '9'],
    ['RATE_LIMIT_MAX_WAIT_MS', '-1'],
    ['RATE_LIMIT_SAFETY_MARGIN_MS', '10001'],
    ['RATE_LIMIT_ON_REDIS_DOWN', 'fail'],
    ['RATE_LIMIT_ON_REDIS_DOWN', 'LOCAL'],
    ['RATE_LIMIT_REPLICAS', '0'],
    ['RATE_LIMIT_REPLICAS', '1001'],
    ['RATE_LIMIT_REPLICAS', 'three'],
    ['RATE_LIMIT_SLOW_REDIS_MS', '4'],
    ['RATE_LIMIT_SLOW_REDIS_MS', '5001'],
    ['CLIENT_RATE_LIMIT', '0'],
    ['CLIENT_RATE_LIMIT', '100001'],
    ['CLIENT_RATE_LIMIT', '2.5'],
    ['CLIENT_QUOTA_REFUSAL_DELAY_MS', '-1'],
    ['CLIENT_QUOTA_REFUSAL_DELAY_MS', '1001'],
    ['IDEMPOTENCY_TTL_S', '59'],
    ['IDEMPOTENCY_TTL_S', '2592001'],
    ['IDEMPOTENCY_TTL_S', '1d'],
    ['CLIENT_RATE_LIMITS', 'client-a:0'],
    ['CLIENT_RATE_LIMITS', 'client-a:5,client-a:6'],
    ['CLIENT_RATE_LIMITS', 'client-a=5'],
    ['CLIENT_RATE_LIMITS', '-a:5'],
    ['REDIS_URL', 'redis://cache:6379?db=1'],
    ['REDIS_KEY_PREFIX', '{zim}'],
    ['REDIS_KEY_PREFIX', 'k'.repeat(65)],
    ['REDIS_COMMAND_TIMEOUT_MS', '9'],
    ['REDIS_COMMAND_TIMEOUT_MS', '10001'],
    ['REDIS_CONNECT_TIMEOUT_MS', '49'],
    ['REDIS_CONNECT_TIMEOUT_MS', '60001'],
    ['REDIS_SENTINEL_MASTER', 'mymaster'],
  ])('names %s=%j', (variable, value) => {
    expect(badVariables({ ...VALID, [variable]: value })).toEqual([variable]);
  });

  it('names RATE_LIMIT_SLOW_REDIS_MS when it is not below REDIS_COMMAND_TIMEOUT_MS (the timeout would come first)', () => {
    const redis = { ...VALID, REDIS_URL: 'redis://cache.internal:6379' };
    expect(badVariables({ ...redis, REDIS_COMMAND_TIMEOUT_MS: '100', RATE_LIMIT_SLOW_REDIS_MS: '100' })).toEqual(['RATE_LIMIT_SLOW_REDIS_MS']);
    expect(loadConfig({ ...redis, REDIS_COMMAND_TIMEOUT_MS: '101', RATE_LIMIT_SLOW_REDIS_MS: '100' }).redisDown.slowRoundTripMs).toBe(100);
    // Without Redis there is nothing to be slow.
    expect(loadConfig({ ...VALID, REDIS_COMMAND_TIMEOUT_MS: '50', RATE_LIMIT_SLOW_REDIS_MS: '100' }).redisDown.slowRoundTripMs).toBe(100);
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

  it.each(['http://cache:6379', 'cache:6379', 'not a url', 'redis://', 'redis://cache/db2', 'redis://cache#x'])(
    'names REDIS_URL %j',
    (url) => {
      expect(badVariables({ ...VALID, REDIS_URL: url })).toEqual(['REDIS_URL']);
    },
  );

  describe('with Redis variables that do not fit together', () => {
    const SENTINEL_ENV: Env = { ...VALID, REDIS_SENTINELS: 'a:26379', REDIS_SENTINEL_MASTER: 'mymaster' };

    it('names REDIS_URL, naming REDIS_SENTINELS too, when both are set', () => {
      const error = configError({ ...SENTINEL_ENV, REDIS_URL: 'redis://cache:6379' });
      expect(error.problems).toEqual([
        { variable: 'REDIS_URL', reason: 'set exactly one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES (REDIS_URL and REDIS_SENTINELS are set)' },
      ]);
    });

    it('names REDIS_SENTINEL_MASTER when it is missing beside REDIS_SENTINELS', () => {
      expect(badVariables(without(SENTINEL_ENV, 'REDIS_SENTINEL_MASTER'))).toEqual(['REDIS_SENTINEL_MASTER']);
    });

    it('names REDIS_SENTINEL_MASTER when it is set without REDIS_SENTINELS, with or without REDIS_URL', () => {
      expect(badVariables(without(SENTINEL_ENV, 'REDIS_SENTINELS'))).toEqual(['REDIS_SENTINEL_MASTER']);
      expect(badVariables({ ...without(SENTINEL_ENV, 'REDIS_SENTINELS'), REDIS_URL: 'redis://cache' })).toEqual([
        'REDIS_SENTINEL_MASTER',
      ]);
    });

    it.each([
      ['REDIS_USERNAME', 'gateway', 'put credentials in REDIS_URL'],
      ['REDIS_PASSWORD', REDIS_PASSWORD, 'put credentials in REDIS_URL'],
      ['REDIS_SENTINEL_PASSWORD', SENTINEL_PASSWORD, 'applies only with REDIS_SENTINELS'],
      ['REDIS_TLS', 'true', 'use rediss://'],
    ])('names %s set beside REDIS_URL', (variable, value, hint) => {
      const error = configError({ ...VALID, REDIS_URL: 'redis://cache:6379', [variable]: value });
      expect(error.problems.map((p) => p.variable)).toEqual([variable]);
      expect(error.problems[0]!.reason).toContain(hint);
      expect(error.message).not.toContain('CANARY');
    });

    it.each(['sentinel-0', 'sentinel-0:0', '::1:26379', 'a:26379,A:26379', ' , '])(
      'names REDIS_SENTINELS %j',
      (sentinels) => {
        expect(badVariables({ ...SENTINEL_ENV, REDIS_SENTINELS: sentinels })).toEqual(['REDIS_SENTINELS']);
      },
    );

    it('names REDIS_TLS that is neither true nor false', () => {
      expect(badVariables({ ...SENTINEL_ENV, REDIS_TLS: 'yes' })).toEqual(['REDIS_TLS']);
    });
  });

  it('names ZEGO_CALL_DEADLINE_MS when it is shorter than ZEGO_TIMEOUT_MS', () => {
    expect(badVariables({ ...VALID, ZEGO_TIMEOUT_MS: '5000', ZEGO_CALL_DEADLINE_MS: '4999' })).toEqual([
      'ZEGO_CALL_DEADLINE_MS',
    ]);
    // Also when the deadline is left at its default and the timeout is raised past it.
    expect(badVariables({ ...VALID, ZEGO_TIMEOUT_MS: '20000' })).toEqual(['ZEGO_CALL_DEADLINE_MS']);
  });

  it('names HTTP_REQUEST_TIMEOUT_MS when it is shorter than HTTP_HEADERS_TIMEOUT_MS', () => {
    const error = configError({ ...VALID, HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: '4999' });
    expect(error.problems).toEqual([
      { variable: 'HTTP_REQUEST_TIMEOUT_MS', reason: 'must be at least HTTP_HEADERS_TIMEOUT_MS' },
    ]);
    // Also when the request timeout is left at its default and the headers timeout is raised past it.
    expect(badVariables({ ...VALID, HTTP_HEADERS_TIMEOUT_MS: '30001' })).toEqual(['HTTP_REQUEST_TIMEOUT_MS']);
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
      CLIENT_RATE_LIMITS: 'orders:0',
      RATE_LIMIT_ON_REDIS_DOWN: 'maybe',
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
        'CLIENT_RATE_LIMITS',
        'RATE_LIMIT_ON_REDIS_DOWN',
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

    it('when REDIS_URL holding a password is bad', () => {
      for (const url of [
        `http://gateway:${REDIS_PASSWORD}@cache:6379`,
        `redis://gateway:${REDIS_PASSWORD}@cache:6379/not-a-db`,
        `redis://gateway:${REDIS_PASSWORD}@cache:6379?tls=1`,
        `redis//gateway:${REDIS_PASSWORD}@cache:6379`,
      ]) {
        const text = everyRendering(configError({ ...VALID, REDIS_URL: url }));
        expect(text).toContain('REDIS_URL');
        expect(text).not.toContain('CANARY');
        expect(text).not.toContain('cache:6379');
      }
    });

    it('when Redis credentials are set where they do not belong', () => {
      const env = {
        ...VALID,
        REDIS_URL: `rediss://gateway:${REDIS_PASSWORD}@cache:6380`,
        REDIS_PASSWORD: REDIS_PASSWORD,
        REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
        REDIS_SENTINELS: 'a:26379',
      };
      const text = everyRendering(configError(env));
      expect(text).toContain('REDIS_URL');
      expect(text).not.toContain('CANARY');
    });

    it('nor does the loaded configuration', () => {
      const config: AppConfig = loadConfig(VALID);
      const rendered = [JSON.stringify(config), inspect(config, { depth: Infinity, showHidden: true })].join('\n');
      expect(rendered).not.toContain(SECRET);
    });

    it('nor does a loaded configuration with a Redis URL or Redis passwords', () => {
      const configs: AppConfig[] = [
        loadConfig({ ...VALID, REDIS_URL: `rediss://gateway:${REDIS_PASSWORD}@cache.internal:6380/2` }),
        loadConfig({
          ...VALID,
          REDIS_SENTINELS: '[::1]:26379',
          REDIS_SENTINEL_MASTER: 'mymaster',
          REDIS_PASSWORD: REDIS_PASSWORD,
          REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
        }),
      ];
      for (const config of configs) {
        const rendered = [
          JSON.stringify(config),
          JSON.stringify(config, null, 2),
          inspect(config, { depth: Infinity, showHidden: true }),
          inspect(config.redis, { depth: Infinity, showHidden: true }),
        ].join('\n');
        expect(rendered).toContain('[redacted]');
        expect(rendered).not.toContain('CANARY');
        expect(rendered).not.toContain('cache.internal');
      }
    });
  });
});

describe('sharing the vendor budget', () => {
  it('reads client weights and priorities, the batch share and the batch wait', () => {
    const config = loadConfig({
      ...VALID,
      CLIENT_WEIGHTS: 'team-a:3,team-b:0.5\n# a comment\nteam-c:1000',
      CLIENT_PRIORITIES: 'nightly-import:batch, web:interactive',
      RATE_LIMIT_BATCH_MIN_SHARE: '0.25',
      RATE_LIMIT_MAX_WAIT_MS_BATCH: '12000',
    });
    expect({ ...config.outbound.weights }).toEqual({ 'team-a': 3, 'team-b': 0.5, 'team-c': 1000 });
    expect({ ...config.outbound.priorities }).toEqual({ 'nightly-import': 'batch', web: 'interactive' });
    expect(Object.getPrototypeOf(config.outbound.weights)).toBeNull();
    expect(config.outbound.batchMinShare).toBe(0.25);
    expect(config.outbound.maxWaitMsBatch).toBe(12_000);
  });

  it('lets the batch wait follow a raised interactive wait when it is not set', () => {
    expect(loadConfig({ ...VALID, RATE_LIMIT_MAX_WAIT_MS: '9000' }).outbound.maxWaitMsBatch).toBe(9000);
  });

  it.each([
    ['CLIENT_WEIGHTS', 'team-a:0'],
    ['CLIENT_WEIGHTS', 'team-a:-1'],
    ['CLIENT_WEIGHTS', 'team-a:1001'],
    ['CLIENT_WEIGHTS', 'team-a:1.2345'],
    ['CLIENT_WEIGHTS', 'team-a:heavy'],
    ['CLIENT_WEIGHTS', 'team-a:2,team-a:3'],
    ['CLIENT_PRIORITIES', 'team-a:urgent'],
    ['CLIENT_PRIORITIES', 'team-a:Batch '],
    ['CLIENT_PRIORITIES', '-team:batch'],
    ['RATE_LIMIT_BATCH_MIN_SHARE', '0'],
    ['RATE_LIMIT_BATCH_MIN_SHARE', '1'],
    ['RATE_LIMIT_BATCH_MIN_SHARE', '10%'],
    ['RATE_LIMIT_BATCH_MIN_SHARE', '-0.1'],
  ])('names %s for %j', (variable, value) => {
    expect(badVariables({ ...VALID, [variable]: value })).toEqual([variable]);
  });

  it('names RATE_LIMIT_MAX_WAIT_MS_BATCH when it is shorter than the interactive wait', () => {
    expect(badVariables({ ...VALID, RATE_LIMIT_MAX_WAIT_MS: '3000', RATE_LIMIT_MAX_WAIT_MS_BATCH: '2999' })).toEqual([
      'RATE_LIMIT_MAX_WAIT_MS_BATCH',
    ]);
  });

  it('points at the bad entry of a client list by position, never quoting it', () => {
    const error = configError({ ...VALID, CLIENT_WEIGHTS: 'ok:1,SENTINEL-weight:x' });
    expect(error.problems).toEqual([{ variable: 'CLIENT_WEIGHTS', reason: expect.stringMatching(/^entry 2 must be client-id:weight /) }]);
    expect(error.message).not.toContain('SENTINEL');
  });
});

describe('running without Redis', () => {
  it('refuses to start in production without Redis unless RATE_LIMIT_STANDALONE=true says it is the only replica', () => {
    const error = configError({ ...VALID, NODE_ENV: 'production' });
    expect(error.problems).toEqual([{ variable: 'RATE_LIMIT_STANDALONE', reason: expect.stringContaining('NODE_ENV=production') }]);
    expect(error.problems[0]!.reason).toMatch(/REDIS_URL/);
    expect(loadConfig({ ...VALID, NODE_ENV: 'production', RATE_LIMIT_STANDALONE: 'true' }).redis).toBeUndefined();
    expect(loadConfig({ ...VALID, NODE_ENV: 'production', REDIS_URL: 'redis://cache:6379' }).redis).toBeDefined();
  });

  it('needs nothing outside production (the local quick start, the tests)', () => {
    expect(loadConfig(VALID).redis).toBeUndefined();
    expect(loadConfig({ ...VALID, NODE_ENV: 'development' }).redis).toBeUndefined();
  });

  it('names RATE_LIMIT_STANDALONE when Redis is configured too', () => {
    expect(badVariables({ ...VALID, REDIS_URL: 'redis://cache:6379', RATE_LIMIT_STANDALONE: 'true' })).toEqual([
      'RATE_LIMIT_STANDALONE',
    ]);
  });
});
