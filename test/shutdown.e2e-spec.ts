/**
 * SIGTERM with requests in flight, against the real process: every request already accepted
 * finishes with its room created, including those still waiting for a limiter slot; new
 * connections are refused once the grace period is over; Redis is closed; the exit code is 0.
 */
import { describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { waitFor } from './support/async-probes.js';
import { createRoom, waitForLimiterMode } from './support/fleet.js';
import { scenario } from './support/scenario.js';

const APP_ID = 2645751311;
const SECRET = 'SENTINEL-secret-shutdown-6b0e4d2a91c7f358';
const KEY = 'sk-SENTINEL-shutdown-3f7a9c1e5b08d624';
const GRACE_MS = 1500;
const IN_FLIGHT = 8;

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { 'svc-shutdown': KEY },
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'shutdown-operator' },
  redis: 'private',
});
const { fake, redis } = s;

/** The gateway's connections to Redis: the request path's (named zim-room-gateway), or all, the batch queues' too (BullMQ names its blocking ones under the key prefix). */
async function gatewayConnections(admin: Redis, which: 'request-path' | 'all' = 'request-path'): Promise<number> {
  const list = String(await admin.call('CLIENT', 'LIST'));
  const names = list.split('\n').map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1] ?? '');
  return names.filter((name) => (which === 'all' ? name.startsWith('zim-room-gateway') : name === 'zim-room-gateway')).length;
}

describe('SIGTERM with requests in flight', () => {
  it('finishes every accepted request, then refuses new connections, closes Redis and exits 0', async () => {
    const gateway = await s.startGateway({
      REDIS_URL: redis.url,
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
      // Four calls a second: the eight requests queue for about two seconds of slots.
      ZEGO_QPS_LIMIT: '4',
      RATE_LIMIT_MAX_WAIT_MS: '5000',
      ZEGO_CALL_DEADLINE_MS: '15000',
    });
    await waitForLimiterMode(gateway, 'shared');
    const admin = new Redis(redis.url);
    try {
      expect(await gatewayConnections(admin)).toBe(1);
      // Each vendor call also takes a while, so some are in the vendor's hands at SIGTERM.
      fake.injectFault({ kind: 'delay', delayMs: 400 });

      const requests = Array.from({ length: IN_FLIGHT }, (_, i) => createRoom(gateway.url, KEY, `shutdown-${i}`, 20_000));
      await waitFor(() => fake.calls.length >= 1, { what: 'the first call at the vendor' });
      process.kill(gateway.pid, 'SIGTERM');
      const signalledAt = Date.now();

      // Past the grace period the listener is closed: a new connection is refused.
      await waitFor(
        async () =>
          fetch(`${gateway.url}/health/live`).then(
            () => false,
            (error: unknown) => /ECONNREFUSED/.test(String((error as { cause?: unknown }).cause)),
          ),
        { what: 'new connections refused', timeoutMs: GRACE_MS + 5_000, intervalMs: 50 },
      );
      expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(GRACE_MS - 50);

      const answers = await Promise.all(requests);
      expect(answers.map((a) => a.status)).toEqual(Array.from({ length: IN_FLIGHT }, () => 201));
      expect(fake.createdRooms).toHaveLength(IN_FLIGHT);
      expect(await gateway.exited).toEqual({ code: 0, signal: null });
      expect(await gatewayConnections(admin, 'all')).toBe(0);
      expect(gateway.stdout()).toMatch(/Listener closed; \d+ requests in flight finished/);
    } finally {
      await admin.quit();
    }
  }, 60_000);
});
