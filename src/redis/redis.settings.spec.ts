import { describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import type { ConfigProblem } from '../config/config-error.js';
import { EnvReader, type Env } from '../config/env-reader.js';
import { readRedisSettings, type RedisConnectionSettings, type RedisSettings } from './redis.settings.js';
import { Secret } from '../config/secret.js';

const PASSWORD = 'CANARY-redis-password-4d2a';
const SENTINEL_PASSWORD = 'CANARY-sentinel-password-9c1f';

function read(env: Env): { settings: RedisSettings | undefined; problems: ConfigProblem[] } {
  const reader = new EnvReader(env);
  const settings = readRedisSettings(reader);
  return { settings, problems: reader.problems };
}

function settings(env: Env): RedisSettings {
  const result = read(env);
  expect(result.problems).toEqual([]);
  expect(result.settings).toBeDefined();
  return result.settings!;
}

function sentinelConnection(env: Env): Extract<RedisConnectionSettings, { kind: 'sentinel' }> {
  const { connection } = settings(env);
  if (connection.kind !== 'sentinel') throw new Error(`expected a sentinel connection, got ${connection.kind}`);
  return connection;
}

/** The distinct variables named, sorted. */
function badVariables(env: Env): string[] {
  const { problems } = read(env);
  expect(problems).not.toEqual([]);
  return [...new Set(problems.map((p) => p.variable))].sort();
}

const SENTINELS: Env = {
  REDIS_SENTINELS: 'sentinel-0.sentinel:26379,sentinel-1.sentinel:26379',
  REDIS_SENTINEL_MASTER: 'mymaster',
};

describe('readRedisSettings', () => {
  it('gives undefined, and no problem, when neither REDIS_URL nor REDIS_SENTINELS is set', () => {
    expect(read({})).toEqual({ settings: undefined, problems: [] });
    expect(read({ REDIS_URL: ' ', REDIS_SENTINELS: '' })).toEqual({ settings: undefined, problems: [] });
  });

  it('still checks the key prefix and timeouts without Redis', () => {
    expect(badVariables({ REDIS_KEY_PREFIX: '{x}', REDIS_COMMAND_TIMEOUT_MS: '9' })).toEqual([
      'REDIS_COMMAND_TIMEOUT_MS',
      'REDIS_KEY_PREFIX',
    ]);
  });

  describe('with REDIS_URL', () => {
    it('wraps the URL in a Secret and applies the defaults', () => {
      const result = settings({ REDIS_URL: 'redis://cache:6379' });
      expect(result).toEqual({
        connection: { kind: 'url', url: expect.any(Secret) },
        keyPrefix: 'zim-room-gateway',
        commandTimeoutMs: 250,
        connectTimeoutMs: 1000,
      });
      expect((result.connection as { url: Secret }).url.reveal()).toBe('redis://cache:6379');
    });

    it.each([
      'redis://cache',
      'redis://cache/',
      'redis://cache:6379/15',
      'rediss://cache.internal:6380/2',
      `rediss://gateway:${PASSWORD}@cache.internal:6380/0`,
      `redis://:${PASSWORD}@10.0.0.7`,
      'redis://[::1]:6379',
    ])('accepts %j', (url) => {
      const { connection } = settings({ REDIS_URL: url });
      expect(connection.kind).toBe('url');
      expect((connection as { url: Secret }).url.reveal()).toBe(url);
    });

    it.each([
      ['another protocol', 'http://cache:6379'],
      ['no protocol', 'cache:6379'],
      ['not a URL at all', 'not a url'],
      ['no host', 'redis:///2'],
      ['an opaque path', 'redis:cache'],
      ['a database that is not a number', 'redis://cache/zero'],
      ['a deeper path', 'redis://cache/2/x'],
      ['a query', 'redis://cache:6379?db=2'],
      ['a fragment', 'redis://cache:6379#x'],
      ['a port out of range', 'redis://cache:65536'],
    ])('refuses a URL with %s, without quoting it', (_label, url) => {
      const withPassword = url.replace('cache', `user:${PASSWORD}@cache`);
      for (const candidate of [url, withPassword]) {
        const { settings: result, problems } = read({ REDIS_URL: candidate });
        expect(result).toBeUndefined();
        expect(problems.map((p) => p.variable)).toEqual(['REDIS_URL']);
        expect(JSON.stringify(problems)).not.toContain(candidate);
        expect(JSON.stringify(problems)).not.toContain('CANARY');
      }
    });

    it.each([
      ['REDIS_USERNAME', 'gateway', /put credentials in REDIS_URL/],
      ['REDIS_PASSWORD', PASSWORD, /put credentials in REDIS_URL/],
      ['REDIS_SENTINEL_PASSWORD', SENTINEL_PASSWORD, /only with REDIS_SENTINELS/],
      ['REDIS_SENTINEL_MASTER', 'mymaster', /only with REDIS_SENTINELS/],
      ['REDIS_TLS', 'true', /use rediss:\/\//],
      ['REDIS_TLS', 'false', /use rediss:\/\//],
    ])('refuses %s=%j beside it', (variable, value, reason) => {
      const { problems } = read({ REDIS_URL: 'redis://cache:6379', [variable]: value });
      expect(problems).toEqual([{ variable, reason: expect.stringMatching(reason) }]);
      expect(JSON.stringify(problems)).not.toContain('CANARY');
    });
  });

  describe('with REDIS_SENTINELS', () => {
    it('reads the sentinels, the master name and the defaults', () => {
      expect(settings(SENTINELS)).toEqual({
        connection: {
          kind: 'sentinel',
          sentinels: [
            { host: 'sentinel-0.sentinel', port: 26379 },
            { host: 'sentinel-1.sentinel', port: 26379 },
          ],
          masterName: 'mymaster',
          username: undefined,
          password: undefined,
          sentinelPassword: undefined,
          tls: false,
        },
        keyPrefix: 'zim-room-gateway',
        commandTimeoutMs: 250,
        connectTimeoutMs: 1000,
      });
    });

    it('reads credentials as Secrets, TLS, and the shared settings', () => {
      const result = settings({
        ...SENTINELS,
        REDIS_USERNAME: 'gateway',
        REDIS_PASSWORD: PASSWORD,
        REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
        REDIS_TLS: 'true',
        REDIS_KEY_PREFIX: 'prod:zim.gw_1-a',
        REDIS_COMMAND_TIMEOUT_MS: '10',
        REDIS_CONNECT_TIMEOUT_MS: '60000',
      });
      const connection = result.connection as Extract<RedisConnectionSettings, { kind: 'sentinel' }>;
      expect(connection.username).toBe('gateway');
      expect(connection.password).toBeInstanceOf(Secret);
      expect(connection.password!.reveal()).toBe(PASSWORD);
      expect(connection.sentinelPassword).toBeInstanceOf(Secret);
      expect(connection.sentinelPassword!.reveal()).toBe(SENTINEL_PASSWORD);
      expect(connection.tls).toBe(true);
      expect(result).toMatchObject({ keyPrefix: 'prod:zim.gw_1-a', commandTimeoutMs: 10, connectTimeoutMs: 60_000 });
    });

    it('reads REDIS_TLS=false', () => {
      expect(sentinelConnection({ ...SENTINELS, REDIS_TLS: 'false' }).tls).toBe(false);
    });

    it('takes IPv6 sentinels in brackets and keeps the address without them', () => {
      const connection = sentinelConnection({
        ...SENTINELS,
        REDIS_SENTINELS: '[::1]:26379, [fd00:10::7]:26380,10.0.0.8:26379',
      });
      expect(connection.sentinels).toEqual([
        { host: '::1', port: 26379 },
        { host: 'fd00:10::7', port: 26380 },
        { host: '10.0.0.8', port: 26379 },
      ]);
    });

    it('takes sentinels separated by commas or newlines, around spaces', () => {
      const connection = sentinelConnection({ ...SENTINELS, REDIS_SENTINELS: ' a:1 ,\nb:65535\n, c:2,' });
      expect(connection.sentinels).toEqual([
        { host: 'a', port: 1 },
        { host: 'b', port: 65535 },
        { host: 'c', port: 2 },
      ]);
    });

    it.each([
      ['without a port', 'sentinel-0'],
      ['with an empty port', 'sentinel-0:'],
      ['with port 0', 'sentinel-0:0'],
      ['with port 65536', 'sentinel-0:65536'],
      ['with a named port', 'sentinel-0:sentinel'],
      ['without a host', ':26379'],
      ['with a host holding a space', 'my sentinel:26379'],
      ['with a host holding an underscore', 'my_sentinel:26379'],
      ['with a bad IPv4 address', '10.0.0.256:26379'],
      ['with an IPv6 address outside brackets', '::1:26379'],
      ['with something else in brackets', '[sentinel-0]:26379'],
      ['with an IPv6 address in brackets but no port', '[::1]'],
      ['with a URL', 'redis://sentinel-0:26379'],
    ])('refuses an entry %s, by position and without quoting it', (_label, entry) => {
      const { problems } = read({ ...SENTINELS, REDIS_SENTINELS: `ok:26379,${entry}` });
      expect(problems).toEqual([
        { variable: 'REDIS_SENTINELS', reason: expect.stringMatching(/^entry 2 must be host:port /) },
      ]);
    });

    it('refuses a repeated sentinel, whatever the case of its host', () => {
      const { problems } = read({ ...SENTINELS, REDIS_SENTINELS: 'a:1,Sentinel:2,b:1,sentinel:2' });
      expect(problems).toEqual([{ variable: 'REDIS_SENTINELS', reason: 'entry 4 repeats entry 2' }]);
      // The same host on another port is another sentinel.
      expect(sentinelConnection({ ...SENTINELS, REDIS_SENTINELS: 'a:1,a:2' }).sentinels).toHaveLength(2);
    });

    it('refuses a list without any sentinel', () => {
      expect(read({ ...SENTINELS, REDIS_SENTINELS: ' , ' }).problems).toEqual([
        { variable: 'REDIS_SENTINELS', reason: 'holds no host:port' },
      ]);
    });

    it('requires REDIS_SENTINEL_MASTER', () => {
      const { settings: result, problems } = read({ REDIS_SENTINELS: 'a:26379' });
      expect(result).toBeUndefined();
      expect(problems).toEqual([{ variable: 'REDIS_SENTINEL_MASTER', reason: 'is required with REDIS_SENTINELS' }]);
    });

    it.each(['my master', 'x'.repeat(129), '{mymaster}'])('refuses REDIS_SENTINEL_MASTER %j', (masterName) => {
      expect(badVariables({ ...SENTINELS, REDIS_SENTINEL_MASTER: masterName })).toEqual(['REDIS_SENTINEL_MASTER']);
    });

    it.each(['yes', '1', 'TRUE', 'on'])('refuses REDIS_TLS %j', (tls) => {
      const { problems } = read({ ...SENTINELS, REDIS_TLS: tls });
      expect(problems).toEqual([{ variable: 'REDIS_TLS', reason: 'must be one of true, false' }]);
    });
  });

  describe('refuses variables that do not fit together', () => {
    it('names REDIS_URL, and REDIS_SENTINELS in its reason, when both are set', () => {
      const { settings: result, problems } = read({ ...SENTINELS, REDIS_URL: 'redis://cache:6379' });
      expect(result).toBeUndefined();
      expect(problems).toEqual([
        { variable: 'REDIS_URL', reason: 'set exactly one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES (REDIS_URL and REDIS_SENTINELS are set)' },
      ]);
    });

    it.each([
      ['REDIS_SENTINEL_MASTER', 'mymaster', 'applies only with REDIS_SENTINELS'],
      ['REDIS_SENTINEL_PASSWORD', SENTINEL_PASSWORD, 'applies only with REDIS_SENTINELS'],
      ['REDIS_USERNAME', 'gateway', 'applies only with REDIS_SENTINELS or REDIS_CLUSTER_NODES'],
      ['REDIS_PASSWORD', PASSWORD, 'applies only with REDIS_SENTINELS or REDIS_CLUSTER_NODES'],
      ['REDIS_TLS', 'true', 'applies only with REDIS_SENTINELS or REDIS_CLUSTER_NODES'],
    ])('names %s set without any Redis to reach, rather than running in process', (variable, value, reason) => {
      expect(read({ [variable]: value }).problems).toEqual([{ variable, reason }]);
    });

    it.each([
      [{ REDIS_URL: 'redis://cache:6379', REDIS_CLUSTER_NODES: 'a:7000' }, 'REDIS_URL and REDIS_CLUSTER_NODES'],
      [{ ...SENTINELS, REDIS_CLUSTER_NODES: 'a:7000' }, 'REDIS_SENTINELS and REDIS_CLUSTER_NODES'],
      [{ ...SENTINELS, REDIS_URL: 'redis://cache', REDIS_CLUSTER_NODES: 'a:7000' }, 'REDIS_URL and REDIS_SENTINELS and REDIS_CLUSTER_NODES'],
    ])('names the first of the ways to reach Redis when more than one is set (%#)', (env, which) => {
      const { settings: result, problems } = read(env);
      expect(result).toBeUndefined();
      expect(problems).toHaveLength(1);
      expect(problems[0]!.reason).toBe(`set exactly one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES (${which} are set)`);
    });
  });

  describe('REDIS_CLUSTER_NODES', () => {
    function clusterConnection(env: Env): Extract<RedisConnectionSettings, { kind: 'cluster' }> {
      const { connection } = settings(env);
      if (connection.kind !== 'cluster') throw new Error(`expected a cluster connection, got ${connection.kind}`);
      return connection;
    }

    it('reads the seed nodes, IPv6 included, with the credentials and TLS for every node', () => {
      const connection = clusterConnection({
        REDIS_CLUSTER_NODES: 'redis-0.cluster:6379, 10.0.0.7:7001\n[fd00::1]:7002',
        REDIS_USERNAME: 'gateway',
        REDIS_PASSWORD: PASSWORD,
        REDIS_TLS: 'true',
      });
      expect(connection.nodes).toEqual([
        { host: 'redis-0.cluster', port: 6379 },
        { host: '10.0.0.7', port: 7001 },
        { host: 'fd00::1', port: 7002 },
      ]);
      expect(connection.username).toBe('gateway');
      expect(connection.password).toBeInstanceOf(Secret);
      expect(connection.password!.reveal()).toBe(PASSWORD);
      expect(connection.tls).toBe(true);
      expect(inspect(connection)).not.toContain(PASSWORD);
    });

    it('needs no credentials, and is plain TCP by default', () => {
      const connection = clusterConnection({ REDIS_CLUSTER_NODES: 'a:7000' });
      expect(connection).toEqual({ kind: 'cluster', nodes: [{ host: 'a', port: 7000 }], username: undefined, password: undefined, tls: false });
    });

    it.each(['a', 'a:0', 'a:65536', '::1:7000', 'a:7000,A:7000', ' , '])('names REDIS_CLUSTER_NODES %j', (nodes) => {
      expect(badVariables({ REDIS_CLUSTER_NODES: nodes })).toEqual(['REDIS_CLUSTER_NODES']);
    });

    it.each([
      ['REDIS_SENTINEL_MASTER', 'mymaster'],
      ['REDIS_SENTINEL_PASSWORD', SENTINEL_PASSWORD],
    ])('names %s beside REDIS_CLUSTER_NODES', (variable, value) => {
      expect(read({ REDIS_CLUSTER_NODES: 'a:7000', [variable]: value }).problems).toEqual([
        { variable, reason: 'applies only with REDIS_SENTINELS' },
      ]);
    });

    it('counts as Redis configured for RATE_LIMIT_STANDALONE', () => {
      expect(badVariables({ REDIS_CLUSTER_NODES: 'a:7000', RATE_LIMIT_STANDALONE: 'true' })).toEqual(['RATE_LIMIT_STANDALONE']);
      expect(read({ REDIS_CLUSTER_NODES: 'a:7000', NODE_ENV: 'production' }).problems).toEqual([]);
    });
  });

  it.each([
    ['REDIS_KEY_PREFIX', ''.padEnd(65, 'k')],
    ['REDIS_KEY_PREFIX', 'gw{1}'],
    ['REDIS_KEY_PREFIX', 'zim gateway'],
    ['REDIS_KEY_PREFIX', 'gw/1'],
    ['REDIS_COMMAND_TIMEOUT_MS', '9'],
    ['REDIS_COMMAND_TIMEOUT_MS', '10001'],
    ['REDIS_CONNECT_TIMEOUT_MS', '49'],
    ['REDIS_CONNECT_TIMEOUT_MS', '60001'],
    ['REDIS_CONNECT_TIMEOUT_MS', '1s'],
  ])('refuses %s=%j', (variable, value) => {
    expect(badVariables({ REDIS_URL: 'redis://cache:6379', [variable]: value })).toEqual([variable]);
  });

  it('accepts the bounds of the shared settings', () => {
    expect(
      settings({
        REDIS_URL: 'redis://cache',
        REDIS_KEY_PREFIX: 'k'.repeat(64),
        REDIS_COMMAND_TIMEOUT_MS: '10000',
        REDIS_CONNECT_TIMEOUT_MS: '50',
      }),
    ).toMatchObject({ keyPrefix: 'k'.repeat(64), commandTimeoutMs: 10_000, connectTimeoutMs: 50 });
  });

  it('renders no password or URL through JSON or util.inspect', () => {
    const url = `rediss://gateway:${PASSWORD}@cache:6380/1`;
    const rendered = [
      settings({ REDIS_URL: url }),
      settings({ ...SENTINELS, REDIS_PASSWORD: PASSWORD, REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD }),
    ]
      .map((s) => [JSON.stringify(s), inspect(s, { depth: Infinity, showHidden: true }), String(s.connection as unknown)])
      .flat()
      .join('\n');
    expect(rendered).not.toContain('CANARY');
    expect(rendered).not.toContain('cache:6380');
    expect(rendered).toContain('[redacted]');
  });
});
