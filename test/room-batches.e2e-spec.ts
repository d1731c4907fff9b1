/**
 * POST/GET/DELETE /rooms/batches on a gateway without Redis (batches in process), with the fake
 * vendor's record as the judge: a batch is created room by room, each once; a bad batch is refused
 * whole and nothing of it is sent; rooms are reported per room, paged and filtered; a batch is its
 * client's; Idempotency-Key replays the 202; the pending limit, cancel and the signed callback.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ZimCode } from './fake-zim/fake-zim-server.js';
import { until } from './support/async-probes.js';
import { batchClient, roomsNamed, type BatchBody } from './support/batch-client.js';
import { actedAnswersFor } from './support/room-calls.js';
import { scenario } from './support/scenario.js';
import { callbackSignature } from '../src/rooms/batches/batch-callback-sender.js';

const KEY_A = 'sk-SENTINEL-batches-a-51c0e7';
const KEY_B = 'sk-SENTINEL-batches-b-8d22f4';
const CALLBACK_SECRET = 'SENTINEL-callback-secret-0f1e2d3c';

/** A receiver of callbacks that refuses the first `failFirst` deliveries. */
interface Receiver {
  server: Server;
  port: number;
  deliveries: Array<{ body: string; headers: IncomingMessage['headers']; answered: number }>;
  failFirst: number;
}

const receiver: Receiver = { server: createServer(), port: 0, deliveries: [], failFirst: 0 };
beforeAll(async () => {
  receiver.server.on('request', (request: IncomingMessage, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      const answered = receiver.deliveries.length < receiver.failFirst ? 500 : 204;
      receiver.deliveries.push({ body, headers: request.headers, answered });
      response.statusCode = answered;
      response.end();
    });
  });
  await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
  receiver.port = (receiver.server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => receiver.server.close(() => resolve())));

const s = scenario({
  fakeZim: { appId: 1414213562, serverSecret: 'SENTINEL-secret-batches-3e7a' },
  apiKeys: { 'team-a': KEY_A, 'team-b': KEY_B },
  env: {
    ZEGO_DEFAULT_FROM_USER_ID: 'batch-operator',
    CLIENT_RATE_LIMIT: '1000',
    BATCH_MAX_ROOMS: '30',
    BATCH_MAX_PENDING_ROOMS_PER_CLIENT: '40',
    BATCH_CONCURRENCY: '2',
    BATCH_CALLBACK_SECRET: CALLBACK_SECRET,
    // Shorter than the longest batch here: each room's attempt has a deadline of its own, not its submission's.
    ZEGO_CALL_DEADLINE_MS: '2500',
    ZEGO_TIMEOUT_MS: '1000',
  },
});
const gateway = s.gatewayBeforeAll(() => ({ BATCH_CALLBACK_HOSTS: `127.0.0.1:${receiver.port}` }));
const a = batchClient(() => gateway, KEY_A);
const b = batchClient(() => gateway, KEY_B);
let run = 0;
const prefix = (what: string): string => `${what}-${++run}`;
/** Calls for a room the vendor acted on (one it refused at its door for frequency is tried again, and did nothing). */
const actedCallsFor = (roomId: string): number => actedAnswersFor(s.fake.calls, roomId).length;

beforeEach(() => s.fake.setAnswerTime(null));

describe('a batch', () => {
  it('is accepted with 202 and Location, then created room by room, each once at the vendor', async () => {
    const rooms = roomsNamed(prefix('term'), 12);
    const accepted = await a.submit({ rooms: [...rooms.slice(0, 11), { ...rooms[11], roomName: 'Chemistry', attributes: [{ key: 'k', value: 'v' }] }] });
    expect(accepted.status).toBe(202);
    const { batchId } = accepted.body as { batchId: string };
    expect(accepted.headers.get('location')).toBe(`/rooms/batches/${batchId}`);
    expect(accepted.body).toEqual({
      batchId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      status: 'queued',
      total: 12,
      created: 0,
      failed: 0,
      cancelled: 0,
      pending: 12,
      createdAt: expect.any(String),
    });

    const ended = await a.untilEnded(batchId);
    expect(ended).toMatchObject({ status: 'done', total: 12, created: 12, failed: 0, pending: 0, finishedAt: expect.any(String) });
    const listed = await a.allRooms(batchId, 5);
    expect(listed.map((room) => room.roomId)).toEqual(rooms.map((room) => room.roomId));
    expect(listed.every((room) => room.status === 'created' && typeof room.zegoRequestId === 'string')).toBe(true);
    expect(listed[11]).toMatchObject({ attributeSeq: expect.any(Number) });
    expect(rooms.map((room) => actedCallsFor(room.roomId))).toEqual(rooms.map(() => 1));
    const sent = s.fake.calls.find((call) => (call.body as { RoomId?: string }).RoomId === rooms[11]!.roomId)!;
    expect(sent.body).toMatchObject({ RoomName: 'Chemistry', FromUserId: 'batch-operator', Attributes: [{ Key: 'k', Value: 'v' }] });
  });

  it('is refused whole when one room is invalid, naming the room and field; nothing of it is sent', async () => {
    const rooms = roomsNamed(prefix('bad'), 4);
    const refused = await a.submit({ rooms: [rooms[0], rooms[1], { ...rooms[2], roomName: 'x'.repeat(70) }, rooms[3]] });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([{ field: 'rooms[2].roomName', reason: expect.any(String) }]);

    // A later batch of the same client ends after anything queued before it would have been sent.
    const later = await a.submit({ rooms: roomsNamed(prefix('after-bad'), 2) });
    await a.untilEnded((later.body as { batchId: string }).batchId);
    expect(rooms.map((room) => actedCallsFor(room.roomId))).toEqual([0, 0, 0, 0]);
  });

  it('is refused for repeated room ids, too many rooms, no rooms, or a callback host not allowed', async () => {
    const rooms = roomsNamed(prefix('dup'), 3);
    const repeated = await a.submit({ rooms: [rooms[0], rooms[1], rooms[0], rooms[2], rooms[1]] });
    expect(repeated.status).toBe(400);
    expect(repeated.body.errors).toEqual([
      { field: 'rooms[2].roomId', reason: 'repeats rooms[0].roomId: room ids must be unique within a batch' },
      { field: 'rooms[4].roomId', reason: 'repeats rooms[1].roomId: room ids must be unique within a batch' },
    ]);
    const tooMany = await a.submit({ rooms: roomsNamed(prefix('many'), 31) });
    expect(tooMany.body.errors).toEqual([{ field: 'rooms', reason: 'must hold at most 30 rooms (BATCH_MAX_ROOMS)' }]);
    const none = await a.submit({ rooms: [] });
    expect(none.body.errors).toEqual([{ field: 'rooms', reason: expect.stringContaining('at least 1') }]);
    const elsewhere = await a.submit({ rooms: roomsNamed(prefix('cb'), 1), callbackUrl: 'http://169.254.169.254/latest' });
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.body.errors).toEqual([{ field: 'callbackUrl', reason: 'names a host not listed in BATCH_CALLBACK_HOSTS' }]);
    const otherPort = await a.submit({ rooms: roomsNamed(prefix('cb'), 1), callbackUrl: `http://127.0.0.1:${receiver.port + 1}/x` });
    expect(otherPort.status).toBe(400);
  });

  it('reports a room that exists already, and not by this batch, as failed with 409; pages filter by status', async () => {
    const rooms = roomsNamed(prefix('exists'), 5);
    const before = await fetch(`${gateway.url}/rooms`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_A}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(rooms[3]),
    });
    expect(before.status).toBe(201);
    const { batchId } = (await a.submit({ rooms })).body as { batchId: string };
    const ended = await a.untilEnded(batchId);
    expect(ended).toMatchObject({ status: 'done', created: 4, failed: 1 });
    const failed = (await a.get(batchId, '?status=failed')).body as unknown as BatchBody;
    expect(failed.rooms).toEqual([
      { roomId: rooms[3]!.roomId, status: 'failed', error: { statusCode: 409, message: 'The room already exists', zegoCode: ZimCode.roomExists } },
    ]);
    const bad = await a.get(batchId, '?status=lost&limit=0&cursor=x');
    expect(bad.status).toBe(400);
    expect((bad.body.errors as Array<{ field: string }>).map((e) => e.field)).toEqual(['status', 'cursor', 'limit']);
  });

  it("is its client's: another client, an unknown id and a malformed id all get 404", async () => {
    const { batchId } = (await a.submit({ rooms: roomsNamed(prefix('mine'), 1) })).body as { batchId: string };
    await a.untilEnded(batchId);
    expect((await b.get(batchId)).status).toBe(404);
    expect((await b.cancel(batchId)).status).toBe(404);
    expect((await a.get('00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await a.get('..%2F..%2Fmeta')).status).toBe(404);
    expect((await a.get(batchId)).status).toBe(200);
  });

  it('replays its 202 under the same Idempotency-Key, Location included; the key on POST /rooms is another key', async () => {
    const body = { rooms: roomsNamed(prefix('idem'), 3) };
    const key = prefix('batch-key');
    const first = await a.submit(body, { 'Idempotency-Key': key });
    const again = await a.submit(body, { 'Idempotency-Key': key });
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    await a.untilEnded((first.body as { batchId: string }).batchId);
    expect(body.rooms.map((room) => actedCallsFor(room.roomId))).toEqual([1, 1, 1]);

    const single = await fetch(`${gateway.url}/rooms`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_A}`, 'Content-Type': 'application/json', 'Idempotency-Key': key },
      body: JSON.stringify({ roomId: prefix('single') }),
    });
    expect(single.status).toBe(201);
  });
});

describe("the vendor's answers, room by room", () => {
  it('tries a room again after a failure that may pass, and reports a definite refusal as POST /rooms would', async () => {
    const rooms = roomsNamed(prefix('answers'), 2);
    // Every attempt of the first room's first call fails (a 500 the vendor may recover from);
    // then the second room is refused for good.
    s.fake.injectFault({ kind: 'http500', times: 3 });
    s.fake.injectFault({ kind: 'code', code: ZimCode.parameterError, times: 1 });
    const { batchId } = (await a.submit({ rooms: [rooms[0]] })).body as { batchId: string };
    await until(() => actedCallsFor(rooms[0]!.roomId) >= 3, 'the first call of room 0 failed');
    const refused = (await a.submit({ rooms: [rooms[1]] })).body as { batchId: string };
    const ended = await a.untilEnded(batchId, 20_000);
    expect(ended).toMatchObject({ status: 'done', created: 1, failed: 0 });
    expect(actedCallsFor(rooms[0]!.roomId)).toBe(4);
    const other = await a.untilEnded(refused.batchId);
    expect(other.rooms).toEqual([
      {
        roomId: rooms[1]!.roomId,
        status: 'failed',
        error: { statusCode: 400, message: expect.any(String), zegoCode: ZimCode.parameterError },
      },
    ]);
    expect(actedCallsFor(rooms[1]!.roomId)).toBe(1);
  });
});

describe('limits and control', () => {
  it('refuses a batch that would pass the pending limit with 429 and Retry-After', async () => {
    s.fake.setAnswerTime({ minMs: 250, maxMs: 250 });
    const first = await a.submit({ rooms: roomsNamed(prefix('pending'), 30) });
    expect(first.status).toBe(202);
    const over = await a.submit({ rooms: roomsNamed(prefix('pending-more'), 20) });
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(over.body.message).toMatch(/limit of 40/);
    // Another client's rooms are not counted against this one.
    expect((await b.submit({ rooms: roomsNamed(prefix('pending-b'), 20) })).status).toBe(202);
    // Still slow: the first batch takes longer than ZEGO_CALL_DEADLINE_MS to drain, and every room is created.
    expect(await a.untilEnded((first.body as { batchId: string }).batchId)).toMatchObject({ created: 30, failed: 0 });
    s.fake.setAnswerTime(null);
    expect((await a.submit({ rooms: roomsNamed(prefix('pending-again'), 20) })).status).toBe(202);
  });

  it('cancels the rooms not yet sent; those on their way end as their calls do', async () => {
    s.fake.setAnswerTime({ minMs: 150, maxMs: 150 });
    const rooms = roomsNamed(prefix('cancel'), 20);
    const { batchId } = (await a.submit({ rooms })).body as { batchId: string };
    await until(() => rooms.some((room) => actedCallsFor(room.roomId) > 0), 'a first room sent');
    const cancelled = await a.cancel(batchId);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ batchId, status: 'cancelled' });
    s.fake.setAnswerTime(null);
    const ended = await a.untilEnded(batchId);
    expect(ended.status).toBe('cancelled');
    expect(ended.cancelled).toBeGreaterThan(10);
    expect(ended.created + ended.failed + ended.cancelled).toBe(20);
    const all = await a.allRooms(batchId);
    expect(rooms.filter((room) => actedCallsFor(room.roomId) > 0)).toHaveLength(ended.created);
    for (const room of all) expect(actedCallsFor(room.roomId)).toBe(room.status === 'cancelled' ? 0 : 1);
    // Cancelling again changes nothing.
    expect((await a.cancel(batchId)).body).toMatchObject({ status: 'cancelled', cancelled: ended.cancelled });
  });

  it('POSTs the ended batch to its callback, signed, retrying until the receiver takes it', async () => {
    receiver.deliveries.length = 0;
    receiver.failFirst = 2;
    const rooms = roomsNamed(prefix('callback'), 3);
    const accepted = await a.submit({ rooms, callbackUrl: `http://127.0.0.1:${receiver.port}/rooms-ready?team=a` }, { 'X-Request-Id': 'cb-request-1' });
    const { batchId } = accepted.body as { batchId: string };
    await until(() => receiver.deliveries.some((d) => d.answered === 204), 'a delivery taken', 20_000);
    expect(receiver.deliveries.map((d) => d.answered)).toEqual([500, 500, 204]);
    const taken = receiver.deliveries[2]!;
    expect(taken.headers['x-signature']).toBe(callbackSignature(CALLBACK_SECRET, taken.body));
    expect(taken.headers['x-request-id']).toBe('cb-request-1');
    const body = JSON.parse(taken.body) as Record<string, unknown>;
    expect(body).toMatchObject({ batchId, status: 'done', total: 3, created: 3, location: `/rooms/batches/${batchId}` });
    expect(body).not.toHaveProperty('rooms');
    expect(taken.body).not.toContain(CALLBACK_SECRET);
  });
});
