/**
 * A Redis that is slow, not down: one gateway reaches its Redis through a TCP path that delays
 * every chunk by a fixed one-way time (in order). Whatever the round trip, every request ends
 * within its deadline, as a 201, the budget's 429 or the policy's answer; none is still open at
 * the deadline plus a second.
 */
import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createRoom } from './support/fleet.js';
import { scenario } from './support/scenario.js';
import { startTcpProxy, stopAllTcpProxies, type TcpProxyProcess } from './support/tcp-proxy-process.js';
import { afterAll, beforeAll } from '@jest/globals';

const APP_ID = 2147480017;
const SECRET = 'SENTINEL-secret-slow-redis-5b1e7d93a2c4';
const KEY = 'sk-SENTINEL-slow-redis-0c8f3a61e5d2';
const DEADLINE_MS = 10_000;
const CLIENT_TIMEOUT_MS = 30_000;

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { slow: KEY },
  redis: 'private',
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'slow-operator' },
});
let proxy: TcpProxyProcess;
beforeAll(async () => {
  proxy = await startTcpProxy({ target: `127.0.0.1:${s.redis.port}` });
});
afterAll(() => stopAllTcpProxies());

describe.each([15, 25])('one gateway, Redis %i ms away each way', (oneWayMs) => {
  it('ends six sequential requests within the deadline', async () => {
    await proxy.shape({});
    const gateway = await s.startGateway({ REDIS_URL: proxy.url('redis'), ZEGO_CALL_DEADLINE_MS: String(DEADLINE_MS) });
    await proxy.shape({ upstream: { delayMs: oneWayMs }, downstream: { delayMs: oneWayMs } });
    const answers = [];
    for (let i = 0; i < 6; i++) {
      const started = performance.now();
      const answer = await createRoom(gateway.url, KEY, `slow-${randomUUID().slice(0, 8)}`, CLIENT_TIMEOUT_MS).catch((e: Error) => ({ status: -1, error: e.message }));
      answers.push({ status: answer.status, ms: Math.round(performance.now() - started), body: (answer as { body?: string }).body });
    }
    process.stdout.write(`${oneWayMs}: ${JSON.stringify(answers)}\n`);
    await gateway.stop();
    expect(answers.filter((a) => a.ms > DEADLINE_MS + 1000 || ![201, 429].includes(a.status))).toEqual([]);
  }, 240_000);
});
