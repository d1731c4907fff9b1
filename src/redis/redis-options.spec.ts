import { describe, expect, it } from '@jest/globals';
import type { RedisConnectionSettings, RedisSettings } from './redis.settings.js';
import { Secret } from '../config/secret.js';
import { clusterOptions, reconnectDelayMs, redisOptions } from './redis-options.js';

const PASSWORD = 'CANARY-redis-password-71be';
const SENTINEL_PASSWORD = 'CANARY-sentinel-password-0a3d';

function settingsWith(connection: RedisConnectionSettings, timeouts = { command: 321, connect: 4321 }): RedisSettings {
  return {
    connection,
    keyPrefix: 'zim-room-gateway',
    commandTimeoutMs: timeouts.command,
    connectTimeoutMs: timeouts.connect,
  };
}

const urlSettings = (url = `redis://user:${PASSWORD}@redis.internal:6380/2`) =>
  settingsWith({ kind: 'url', url: new Secret(url) });

function sentinelSettings(overrides: Partial<Extract<RedisConnectionSettings, { kind: 'sentinel' }>> = {}) {
  return settingsWith({
    kind: 'sentinel',
    sentinels: [
      { host: 'sentinel-a.internal', port: 26379 },
      { host: '::1', port: 26380 },
    ],
    masterName: 'gateway-primary',
    username: 'gateway',
    password: new Secret(PASSWORD),
    sentinelPassword: new Secret(SENTINEL_PASSWORD),
    tls: false,
    ...overrides,
  });
}

describe('reconnectDelayMs', () => {
  it('grows from 25 ms, doubling, up to a quarter second', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(reconnectDelayMs)).toEqual([25, 50, 100, 200, 250, 250, 250]);
  });

  it('never exceeds a quarter second and never shrinks, however many attempts', () => {
    const delays = Array.from({ length: 10_000 }, (_, i) => reconnectDelayMs(i + 1));
    expect(Math.max(...delays)).toBe(250);
    expect(Math.min(...delays)).toBe(25);
    expect(delays.findIndex((delay, i) => i > 0 && delay < delays[i - 1]!)).toBe(-1);
  });
});

describe('redisOptions', () => {
  describe('for a URL connection', () => {
    const options = redisOptions(urlSettings());

    it('never holds a request up: no offline queue, no retries, nothing re-sent after a reconnect', () => {
      expect(options.enableOfflineQueue).toBe(false);
      expect(options.maxRetriesPerRequest).toBe(0);
      expect(options.autoResendUnfulfilledCommands).toBe(false);
      expect(options.lazyConnect).toBe(false);
    });

    it('takes the command and connect timeouts from the settings', () => {
      expect(options.commandTimeout).toBe(321);
      expect(options.connectTimeout).toBe(4321);
      const other = redisOptions(settingsWith({ kind: 'url', url: new Secret('redis://h') }, { command: 10, connect: 50 }));
      expect(other.commandTimeout).toBe(10);
      expect(other.connectTimeout).toBe(50);
    });

    it('keeps reconnecting, quickly, with a bounded delay', () => {
      expect(options.retryStrategy).toBe(reconnectDelayMs);
      const delays = [1, 2, 3, 10, 100].map((attempt) => options.retryStrategy!(attempt));
      expect(delays.every((d) => typeof d === 'number' && d > 0 && d <= 250)).toBe(true);
      expect(delays[1]!).toBeGreaterThan(delays[0]!);
    });

    it('names the connection', () => {
      expect(options.connectionName).toBe('zim-room-gateway');
    });

    it('leaves host, credentials, sentinels and TLS to the URL', () => {
      for (const option of ['host', 'port', 'username', 'password', 'sentinels', 'name', 'tls', 'db'] as const) {
        expect(options).not.toHaveProperty(option);
      }
      expect(JSON.stringify(options)).not.toContain(PASSWORD);
    });
  });

  describe('for a sentinel connection', () => {
    it('lists the sentinels and names the primary', () => {
      const settings = sentinelSettings();
      const options = redisOptions(settings);
      expect(options.sentinels).toEqual([
        { host: 'sentinel-a.internal', port: 26379 },
        { host: '::1', port: 26380 },
      ]);
      expect(options.name).toBe('gateway-primary');
      // Copies: ioredis may not change the settings through them.
      if (settings.connection.kind !== 'sentinel') throw new Error('unreachable');
      expect(options.sentinels![0]).not.toBe(settings.connection.sentinels[0]);
    });

    it('reveals the passwords into the options only', () => {
      const settings = sentinelSettings();
      const options = redisOptions(settings);
      expect(options.username).toBe('gateway');
      expect(options.password).toBe(PASSWORD);
      expect(options.sentinelPassword).toBe(SENTINEL_PASSWORD);
      // The settings still hold them as secrets.
      expect(JSON.stringify(settings)).not.toContain(PASSWORD);
      expect(JSON.stringify(settings)).not.toContain(SENTINEL_PASSWORD);
    });

    it('leaves credentials unset when there are none', () => {
      const options = redisOptions(
        sentinelSettings({ username: undefined, password: undefined, sentinelPassword: undefined }),
      );
      expect(options.username).toBeUndefined();
      expect(options.password).toBeUndefined();
      expect(options.sentinelPassword).toBeUndefined();
    });

    it('keeps the no-waiting behaviour, for the sentinels too', () => {
      const options = redisOptions(sentinelSettings());
      expect(options.enableOfflineQueue).toBe(false);
      expect(options.maxRetriesPerRequest).toBe(0);
      expect(options.autoResendUnfulfilledCommands).toBe(false);
      expect(options.commandTimeout).toBe(321);
      expect(options.connectTimeout).toBe(4321);
      expect(options.retryStrategy).toBe(reconnectDelayMs);
      expect(options.sentinelRetryStrategy).toBe(reconnectDelayMs);
      expect(options.sentinelCommandTimeout).toBe(321);
    });

    it('sets TLS (for the primary and the sentinels) only when tls is true', () => {
      const plain = redisOptions(sentinelSettings({ tls: false }));
      expect(plain).not.toHaveProperty('tls');
      expect(plain).not.toHaveProperty('enableTLSForSentinelMode');

      const secure = redisOptions(sentinelSettings({ tls: true }));
      expect(secure.tls).toEqual({});
      expect(secure.enableTLSForSentinelMode).toBe(true);
    });
  });
});

describe('clusterOptions', () => {
  const cluster = (overrides: Partial<Extract<RedisConnectionSettings, { kind: 'cluster' }>> = {}) =>
    settingsWith({
      kind: 'cluster',
      nodes: [
        { host: 'redis-0.cluster', port: 7000 },
        { host: 'redis-1.cluster', port: 7001 },
      ],
      username: 'gateway',
      password: new Secret(PASSWORD),
      tls: false,
      ...overrides,
    });

  it('never holds a request up: no offline queue on the cluster or its nodes, no retries, nothing re-sent', () => {
    const options = clusterOptions(cluster());
    expect(options.enableOfflineQueue).toBe(false);
    expect(options.redisOptions).toMatchObject({
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: 321,
      connectTimeout: 4321,
    });
    // The cluster decides how its nodes reconnect; a node's own options cannot.
    expect(options.redisOptions).not.toHaveProperty('retryStrategy');
    expect(options.redisOptions).not.toHaveProperty('enableOfflineQueue');
  });

  it('follows redirections at once, delays no retry (it would be sent after the timeout), and keeps reconnecting quickly', () => {
    const options = clusterOptions(cluster());
    expect(options.maxRedirections).toBeGreaterThanOrEqual(2);
    expect(options.retryDelayOnMoved).toBe(0);
    expect(options.retryDelayOnFailover).toBe(0);
    expect(options.retryDelayOnClusterDown).toBe(0);
    expect(options.retryDelayOnTryAgain).toBe(0);
    expect(options.slotsRefreshInterval).toBeGreaterThan(0);
    expect(options.clusterRetryStrategy).toBe(reconnectDelayMs);
    expect(options.slotsRefreshTimeout).toBe(4321);
    expect(options.scaleReads).toBe('master');
  });

  it('gives every node the credentials, revealed into the options only, and TLS only when asked', () => {
    const plain = clusterOptions(cluster());
    expect(plain.redisOptions).toMatchObject({ username: 'gateway', password: PASSWORD });
    expect(plain.redisOptions).not.toHaveProperty('tls');
    expect(clusterOptions(cluster({ tls: true })).redisOptions).toMatchObject({ tls: {} });
    const bare = clusterOptions(cluster({ username: undefined, password: undefined }));
    expect(bare.redisOptions?.username).toBeUndefined();
    expect(bare.redisOptions?.password).toBeUndefined();
  });
});
