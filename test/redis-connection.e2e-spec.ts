/**
 * Redis as operators run it, against real servers: a password-protected Redis with an ACL user
 * (credentials in REDIS_URL), a Sentinel-managed primary (REDIS_SENTINELS), and wrong credentials
 * (the gateway keeps serving in local mode and never prints the password).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { createRoom, waitForLimiterMode } from './support/fleet.js';
import type { GatewayProcess } from './support/gateway-process.js';
import { startPrivateSentinel } from './support/redis-server.js';
import { scenario } from './support/scenario.js';

const APP_ID = 1414213562;
const SECRET = 'SENTINEL-secret-redis-conn-4e7a0c93b25d18f6';
const KEY = 'sk-SENTINEL-redis-conn-91b6e2d0f47a3c58';
const REDIS_USER = 'gateway';
const REDIS_PASSWORD = 'SENTINEL-redis-password-c03f5a8e71b9d246';
const SLOTS_KEY = `zim-room-gateway:{outbound:${APP_ID}}:slots`;

let admin: Redis;
// Declared before the scenario, so it runs first: the admin client quits while Redis still answers.
afterAll(async () => {
  await admin?.quit();
});

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { 'svc-conn': KEY },
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'conn-operator' },
  redis: 'private',
});
const { redis } = s;
let counter = 0;

const message = (line: { message?: unknown }): string => (typeof line.message === 'string' ? line.message : '');

async function expectSharedModeServing(gateway: GatewayProcess): Promise<void> {
  await waitForLimiterMode(gateway, 'shared');
  await admin.del(SLOTS_KEY);
  const answer = await createRoom(gateway.url, KEY, `conn-${++counter}`, 10_000);
  expect(answer.status).toBe(201);
  // The slot was reserved in this Redis: the shared limiter, not the local fallback, let it out.
  expect(await admin.zcard(SLOTS_KEY)).toBe(1);
}

beforeAll(async () => {
  admin = new Redis(redis.url);
  // An ACL user for the gateway, and no anonymous access any more.
  await admin.call('ACL', 'SETUSER', REDIS_USER, 'on', `>${REDIS_PASSWORD}`, '~*', '+@all');
  await admin.call('ACL', 'SETUSER', 'default', 'on', `>${REDIS_PASSWORD}`);
  await admin.auth(REDIS_USER, REDIS_PASSWORD);
});

describe('REDIS_URL with user and password', () => {
  it('connects with the credentials in the URL and shares the limiter through that Redis', async () => {
    const url = `redis://${REDIS_USER}:${REDIS_PASSWORD}@127.0.0.1:${redis.port}/0`;
    const gateway = await s.startGateway({ REDIS_URL: url });
    await expectSharedModeServing(gateway);
    expect(gateway.stdout() + gateway.stderr()).not.toContain(REDIS_PASSWORD);
  });

  it('with a wrong password keeps serving in local mode, says why, and never prints the password', async () => {
    const wrong = 'SENTINEL-wrong-password-5b2d9e07a4c1f863';
    const gateway = await s.startGateway({ REDIS_URL: `redis://${REDIS_USER}:${wrong}@127.0.0.1:${redis.port}` });
    await gateway.waitForLog((l) => /Redis connection error/.test(message(l)) && /WRONGPASS|NOAUTH|invalid/i.test(message(l)));
    const answer = await createRoom(gateway.url, KEY, `conn-${++counter}`, 10_000);
    expect(answer.status).toBe(201);
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/^zim_gateway_outbound_limiter_mode\{mode="local"\} 1$/m);
    const output = gateway.stdout() + gateway.stderr();
    expect(output).not.toContain(wrong);
    expect(output).not.toContain(REDIS_PASSWORD);
  });
});

describe('REDIS_SENTINELS', () => {
  it('finds the primary through Sentinel and shares the limiter through it', async () => {
    const sentinel = await startPrivateSentinel(redis.port, 'gateway-primary');
    const gateway = await s.startGateway({
      REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`,
      REDIS_SENTINEL_MASTER: 'gateway-primary',
      REDIS_USERNAME: REDIS_USER,
      REDIS_PASSWORD,
    });
    await expectSharedModeServing(gateway);
    expect(gateway.stdout() + gateway.stderr()).not.toContain(REDIS_PASSWORD);
  });
});
