/**
 * Kubernetes probes against the real process: liveness never depends on Redis or the vendor;
 * readiness follows what the replica can do (Redis reachable, or allowed to fall back; not
 * shutting down), with terminus's body; neither needs an API key or calls the vendor.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { apiKeysValue } from './support/api-keys.js';
import { waitFor } from './support/async-probes.js';
import { waitForLimiterMode } from './support/fleet.js';
import type { GatewayProcess } from './support/gateway-process.js';
import { scenario } from './support/scenario.js';

const APP_ID = 2236067977;
const SECRET = 'SENTINEL-secret-health-9d1c7e3a50b2f846';
const KEY = 'sk-SENTINEL-health-4a8f2c6e0d93b157';

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { 'svc-health': KEY },
  redis: 'private',
});
const { fake, redis } = s;

interface HealthBody {
  status: string;
  info: Record<string, { status: string; [detail: string]: unknown }>;
  error: Record<string, { status: string; [detail: string]: unknown }>;
  details: Record<string, { status: string; [detail: string]: unknown }>;
}

async function probe(gateway: GatewayProcess, which: 'live' | 'ready'): Promise<{ status: number; body: HealthBody; cache: string | null }> {
  const response = await fetch(`${gateway.url}/health/${which}`);
  return { status: response.status, body: (await response.json()) as HealthBody, cache: response.headers.get('cache-control') };
}

describe('without Redis', () => {
  it('is live and ready without an API key, and never calls the vendor', async () => {
    const gateway = await s.startGateway();
    const live = await probe(gateway, 'live');
    expect(live.status).toBe(200);
    expect(live.body).toMatchObject({ status: 'ok', info: { process: { status: 'up' } }, error: {} });
    expect(live.cache).toBe('no-store');
    const ready = await probe(gateway, 'ready');
    expect(ready.status).toBe(200);
    expect(ready.body.details).toMatchObject({
      lifecycle: { status: 'up' },
      outboundLimiter: { status: 'up', mode: 'local' },
    });
    expect(fake.calls).toHaveLength(0);
  });
});

describe('with Redis', () => {
  it('stays ready (degraded) in local mode while Redis is down, and up again when it is back', async () => {
    const gateway = await s.startGateway({ REDIS_URL: redis.url });
    await waitForLimiterMode(gateway, 'shared');
    expect((await probe(gateway, 'ready')).body.details.outboundLimiter).toMatchObject({ status: 'up', mode: 'shared' });

    await redis.stop();
    await waitForLimiterMode(gateway, 'local');
    const ready = await probe(gateway, 'ready');
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('degraded');
    expect(ready.body.details.outboundLimiter).toMatchObject({ status: 'degraded', mode: 'local' });
    expect(String(ready.body.details.outboundLimiter!.redis)).toMatch(/^unreachable/);
    // Liveness does not care: a Redis outage must not restart every pod.
    expect((await probe(gateway, 'live')).status).toBe(200);

    await redis.restart();
    await waitFor(async () => (await probe(gateway, 'ready')).body.status === 'ok', {
      what: 'readiness back to ok',
      timeoutMs: 10_000,
    });
  });

  it('is not ready while Redis is down when RATE_LIMIT_ON_REDIS_DOWN=reject', async () => {
    const gateway = await s.startGateway({ REDIS_URL: redis.url, RATE_LIMIT_ON_REDIS_DOWN: 'reject' });
    await waitForLimiterMode(gateway, 'shared');
    await redis.stop();
    await waitFor(async () => (await probe(gateway, 'ready')).status === 503, { what: 'readiness to fail' });
    const ready = await probe(gateway, 'ready');
    expect(ready.body).toMatchObject({
      status: 'error',
      error: { outboundLimiter: { status: 'down', mode: 'reject' } },
      info: { lifecycle: { status: 'up' } },
    });
    expect((await probe(gateway, 'live')).status).toBe(200);
    await redis.restart();
    await waitFor(async () => (await probe(gateway, 'ready')).status === 200, { what: 'readiness back', timeoutMs: 10_000 });
  });
});

describe('a mounted secret file gone bad', () => {
  it('keeps the replica ready (degraded) with the last good value, naming the file and the reason', async () => {
    const keysFile = path.join(mkdtempSync(path.join(tmpdir(), 'zim-gw-health-')), 'api-keys');
    writeFileSync(keysFile, apiKeysValue({ 'svc-health': KEY }));
    const gateway = await s.startGateway({ API_KEYS: undefined, API_KEYS_FILE: keysFile });
    expect((await probe(gateway, 'ready')).body.details.mountedSecrets).toMatchObject({
      status: 'up',
      files: { API_KEYS_FILE: { file: keysFile, state: 'current' } },
    });

    writeFileSync(keysFile, 'not-an-entry');
    await waitFor(async () => (await probe(gateway, 'ready')).body.status === 'degraded', {
      what: 'readiness to report the stale file',
      timeoutMs: 10_000,
    });
    const ready = await probe(gateway, 'ready');
    expect(ready.status).toBe(200);
    expect(ready.body.details.mountedSecrets).toMatchObject({
      status: 'degraded',
      files: { API_KEYS_FILE: { state: 'stale', reason: expect.stringContaining('entry 1') } },
    });
    expect(JSON.stringify(ready.body)).not.toContain('not-an-entry');
  });
});

describe('shutting down', () => {
  it('answers readiness 503 at once on SIGTERM while liveness stays 200 during the grace period', async () => {
    const gateway = await s.startGateway({ SHUTDOWN_GRACE_MS: '3000' });
    process.kill(gateway.pid, 'SIGTERM');
    await waitFor(async () => (await probe(gateway, 'ready')).status === 503, { what: 'readiness to fail' });
    const ready = await probe(gateway, 'ready');
    expect(ready.body).toMatchObject({ status: 'error', error: { lifecycle: { status: 'down', message: 'shutting down' } } });
    expect((await probe(gateway, 'live')).status).toBe(200);
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
  });
});
