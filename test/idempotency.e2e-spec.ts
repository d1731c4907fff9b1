/**
 * The Idempotency-Key header of POST /rooms, with real gateway processes, the fake vendor and
 * private Redis servers: a key is honoured across replicas sharing Redis, a reused key with
 * another body is refused, a duplicate of a running request is told to wait, a retry after a
 * 504 recovers the room the first attempt created, and the store follows
 * RATE_LIMIT_ON_REDIS_DOWN while Redis is away.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { ZimCode } from './fake-zim/fake-zim-server.js';
import { waitFor } from './support/async-probes.js';
import { waitForLimiterMode } from './support/fleet.js';
import type { GatewayProcess } from './support/gateway-process.js';
import { startPrivateRedis, type TestRedis } from './support/redis-server.js';
import { scenario } from './support/scenario.js';

const APP_ID = 1618033988;
const SECRET = 'SENTINEL-secret-idempotency-7c41d0e9';
const KEY = 'sk-SENTINEL-idempotency-3a9f17c2b5';

// No `redis` option: the describes start Redis servers of their own (the scenario stops them too).
const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { 'svc-idem': KEY },
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'idem-operator', CLIENT_RATE_LIMIT: '1000', ZEGO_TIMEOUT_MS: '1000' },
});
const { fake } = s;
let counter = 0;
const unique = (what: string): string => `${what}-${++counter}-${randomUUID().slice(0, 8)}`;

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function post(
  gateway: GatewayProcess,
  body: Record<string, unknown>,
  idempotencyKey?: string,
  requestId?: string,
): Promise<Answer> {
  const response = await fetch(`${gateway.url}/rooms`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${KEY}`,
      'Content-Type': 'application/json',
      ...(idempotencyKey !== undefined && { 'Idempotency-Key': idempotencyKey }),
      ...(requestId !== undefined && { 'X-Request-Id': requestId }),
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

const vendorCallsFor = (roomId: string): number =>
  fake.calls.filter((call) => (call.body as { RoomId?: string } | undefined)?.RoomId === roomId).length;

describe('two replicas sharing Redis', () => {
  let redis: TestRedis;
  let a: GatewayProcess;
  let b: GatewayProcess;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    const shared = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `idem-${randomUUID().slice(0, 8)}` };
    [a, b] = await Promise.all([s.startGateway(shared), s.startGateway(shared)]);
    await Promise.all([waitForLimiterMode(a, 'shared'), waitForLimiterMode(b, 'shared')]);
  }, 60_000);

  it('replays the 201 on the other replica, with Idempotent-Replayed, after one vendor call', async () => {
    const roomId = unique('replay');
    const key = unique('key');
    const first = await post(a, { roomId, roomName: 'first' }, key);
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(first.body).toEqual({ roomId, attributeSeq: 0, zegoRequestId: expect.any(String) });

    const again = await post(b, { roomName: 'first', roomId }, key, 'second-request-id');
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('x-request-id')).toBe('second-request-id');
    expect(vendorCallsFor(roomId)).toBe(1);
  });

  it('answers 422 naming the header when the key is reused with another body', async () => {
    const roomId = unique('reuse');
    const key = unique('key');
    expect((await post(a, { roomId }, key)).status).toBe(201);
    const reuse = await post(b, { roomId: unique('other') }, key);
    expect(reuse.status).toBe(422);
    expect(reuse.body).toMatchObject({
      statusCode: 422,
      message: expect.stringMatching(/^Idempotency-Key: .*different/),
      errors: [{ field: 'Idempotency-Key', reason: expect.stringContaining('different request body') }],
    });
    expect(vendorCallsFor(roomId)).toBe(1);
  });

  it('answers 400 naming the header for a malformed key, before any vendor call', async () => {
    const roomId = unique('malformed');
    const bad = await post(a, { roomId }, 'x'.repeat(256));
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([{ field: 'Idempotency-Key', reason: expect.any(String) }]);
    expect(vendorCallsFor(roomId)).toBe(0);
  });

  it('answers 409 with Retry-After to a duplicate while the first is still at the vendor', async () => {
    const roomId = unique('slow');
    const key = unique('key');
    fake.injectFault({ kind: 'delay', delayMs: 700, times: 1 });
    const first = post(a, { roomId }, key);
    await waitFor(() => vendorCallsFor(roomId) === 1, { what: 'the first call at the vendor' });
    const duplicate = await post(b, { roomId }, key);
    expect(duplicate.status).toBe(409);
    expect(duplicate.headers.get('retry-after')).toBe('1');
    expect(duplicate.body.message).toMatch(/^Idempotency-Key: .*in progress/);
    expect((await first).status).toBe(201);
    const afterwards = await post(b, { roomId }, key);
    expect([afterwards.status, afterwards.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
    expect(vendorCallsFor(roomId)).toBe(1);
  });

  it("stores the vendor's 409 and replays it in the one error shape", async () => {
    const roomId = unique('exists');
    expect((await post(a, { roomId })).status).toBe(201);
    const key = unique('key');
    const first = await post(a, { roomId }, key);
    expect(first.status).toBe(409);
    const again = await post(b, { roomId }, key, 'replay-of-409');
    expect(again.status).toBe(409);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual({ ...first.body, requestId: 'replay-of-409' });
    expect(again.body.zegoCode).toBe(ZimCode.roomExists);
    expect(vendorCallsFor(roomId)).toBe(2);
  });

  it('after a 504, answers the retry 201 with recovered: true when the vendor says the room exists', async () => {
    const roomId = unique('timeout');
    const key = unique('key');
    fake.injectFault({ kind: 'hang', times: 1 });
    const first = await post(a, { roomId, attributes: [{ key: 'k', value: 'v' }] }, key);
    expect(first.status).toBe(504);
    // The vendor had in fact created the room: it now says so.
    fake.injectFault({ kind: 'code', code: ZimCode.roomExists, times: 1 });
    const retry = await post(b, { roomId, attributes: [{ key: 'k', value: 'v' }] }, key);
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual({ roomId, attributeSeq: 1, zegoRequestId: expect.any(String), recovered: true });
    const replay = await post(a, { roomId, attributes: [{ key: 'k', value: 'v' }] }, key);
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
    expect(replay.body).toEqual(retry.body);
    expect(vendorCallsFor(roomId)).toBe(2);
  }, 30_000);

  it('releases the key after a transient failure: the retry calls the vendor again', async () => {
    const roomId = unique('busy');
    const key = unique('key');
    // Busy on every attempt of the first request (it retries), then answered.
    fake.injectFault({ kind: 'code', code: 100000015, times: 3 });
    const first = await post(a, { roomId }, key);
    expect(first.status).toBe(503);
    fake.clearFaults();
    const retry = await post(b, { roomId }, key);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
  }, 30_000);
});

describe('without Redis (one replica)', () => {
  it('keeps keys in process', async () => {
    const gateway = await s.startGateway();
    const roomId = unique('local');
    const key = unique('key');
    const first = await post(gateway, { roomId }, key);
    const again = await post(gateway, { roomId }, key);
    expect([first.status, again.status, again.headers.get('idempotent-replayed')]).toEqual([201, 201, 'true']);
    expect(again.body).toEqual(first.body);
    expect((await post(gateway, { roomId: unique('x') }, key)).status).toBe(422);
    expect(vendorCallsFor(roomId)).toBe(1);
    await gateway.stop();
  }, 30_000);
});

describe('while Redis is down', () => {
  async function replicaWithStoppedRedis(policy: 'local' | 'reject'): Promise<GatewayProcess> {
    const redis = await startPrivateRedis();
    const gateway = await s.startGateway({ REDIS_URL: redis.url, RATE_LIMIT_ON_REDIS_DOWN: policy });
    await waitForLimiterMode(gateway, 'shared');
    const mark = gateway.logMark();
    await redis.stop();
    await waitForLimiterMode(gateway, policy, { since: mark });
    return gateway;
  }

  it('with RATE_LIMIT_ON_REDIS_DOWN=local, stays idempotent within the replica', async () => {
    const gateway = await replicaWithStoppedRedis('local');
    const roomId = unique('down-local');
    const key = unique('key');
    const first = await post(gateway, { roomId }, key);
    expect(first.status).toBe(201);
    const again = await post(gateway, { roomId }, key);
    expect([again.status, again.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
    expect(vendorCallsFor(roomId)).toBe(1);
    await gateway.stop();
  }, 60_000);

  it('with RATE_LIMIT_ON_REDIS_DOWN=reject, answers 503 with Retry-After: 1', async () => {
    const gateway = await replicaWithStoppedRedis('reject');
    const roomId = unique('down-reject');
    const refused = await post(gateway, { roomId }, unique('key'));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(vendorCallsFor(roomId)).toBe(0);
    await gateway.stop();
  }, 60_000);
});
