/**
 * JsonBodyGuard over loopback HTTP, behind a bare Express app: it reads the body itself (so a
 * real request stream is needed), with the route's limits, and refuses what is out of bounds
 * before any validation.
 */
import { connect, type AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import express, { type Request, type Response } from 'express';
import { GatewayError } from './gateway-error.js';
import type { HttpSettings } from './http.settings.js';
import { MAX_KEYS_PER_OBJECT } from './json-body-bounds.js';
import { RefusedBodies } from './refused-bodies.js';
import { JsonBodyGuard } from './json-body.guard.js';
import { RequestValidationError } from './request-validation.error.js';
import { until } from '../../test/support/async-probes.js';

const ROOMS_BYTES = 4 * 1024;
const ROOMS_KEYS = 40;
const BATCH_BYTES = 16 * 1024;
const BATCH_KEYS = 400;

const settings = {
  bodyLimitBytes: ROOMS_BYTES,
  bodyLimitTotalKeys: ROOMS_KEYS,
  routeBodyLimits: [{ method: 'POST', path: '/rooms/batches', bytes: BATCH_BYTES, totalKeys: BATCH_KEYS }],
} as unknown as HttpSettings;

let server: Server;
let base: string;
/** Each refusal's message, in order: what became of a request nobody is left to answer. */
const refusals: string[] = [];
let arrivals = 0;

beforeAll(async () => {
  const guard = new JsonBodyGuard({ http: settings }, new RefusedBodies());
  const app = express();
  const guarded = (request: Request, response: Response): void => {
    arrivals++;
    const context = { switchToHttp: () => ({ getRequest: () => request, getResponse: () => response }) } as unknown as ExecutionContext;
    guard.canActivate(context).then(
      () => response.status(200).json({ body: request.body as unknown }),
      (error: unknown) => {
        const refusal = error as GatewayError;
        refusals.push(refusal.publicMessage);
        const fieldErrors = error instanceof RequestValidationError ? error.fieldErrors : undefined;
        response.status(refusal.status).json({ message: refusal.publicMessage, fieldErrors });
      },
    );
  };
  app.post('/rooms', guarded);
  app.post('/rooms/batches', guarded);
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

interface Answer {
  status: number;
  body: { body?: unknown; message?: string; fieldErrors?: Array<{ field: string; reason: string }> };
}

async function post(path: string, body: string | Uint8Array, contentType = 'application/json'): Promise<Answer> {
  const response = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

const unknownKeys = (count: number): string => JSON.stringify(Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, 0])));

describe('JsonBodyGuard', () => {
  it('reads and passes a realistic room body, a valid U+FFFD included', async () => {
    const body = { roomId: 'r', roomName: 'a \uFFFD b', attributes: [{ key: 'k', value: 'v' }] };
    expect(await post('/rooms', JSON.stringify(body))).toEqual({ status: 200, body: { body } });
  });

  it('refuses a missing body, a body that is not an object, and malformed JSON with a 400 naming the body', async () => {
    const missing = await fetch(`${base}/rooms`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as Answer['body']).fieldErrors).toEqual([{ field: 'body', reason: 'is required: a JSON object' }]);
    expect((await post('/rooms', '[1]')).body.fieldErrors).toEqual([{ field: 'body', reason: 'must be a JSON object' }]);
    expect((await post('/rooms', '{"roomId":')).body.fieldErrors).toEqual([{ field: 'body', reason: 'must be valid JSON' }]);
  });

  it('refuses another content type or charset with a 415', async () => {
    expect((await post('/rooms', '{"roomId":"r"}', 'text/plain')).status).toBe(415);
    expect((await post('/rooms', '{"roomId":"r"}', 'application/json; charset=utf-16')).body).toEqual({
      message: 'Request body charset must be utf-8',
    });
  });

  it("takes each route's byte limit: over the default is 413 on /rooms and read on /rooms/batches", async () => {
    const body = JSON.stringify({ rooms: [{ roomId: 'r', roomName: 'x'.repeat(ROOMS_BYTES) }] });
    expect((await post('/rooms', body)).status).toBe(413);
    expect((await post('/rooms/batches', body)).status).toBe(200);
    expect((await post('/rooms/batches', JSON.stringify({ rooms: ['x'.repeat(BATCH_BYTES)] }))).status).toBe(413);
  });

  it(`refuses an object of more than ${MAX_KEYS_PER_OBJECT} keys, naming it`, async () => {
    expect(await post('/rooms', `{"roomId":"r","attributes":[{"key":"k"},${unknownKeys(MAX_KEYS_PER_OBJECT + 1)}]}`)).toEqual({
      status: 400,
      body: {
        message: `attributes[1]: must not have more than ${MAX_KEYS_PER_OBJECT} keys`,
        fieldErrors: [{ field: 'attributes[1]', reason: `must not have more than ${MAX_KEYS_PER_OBJECT} keys` }],
      },
    });
  });

  it("takes each route's total of keys: what /rooms/batches allows, /rooms refuses", async () => {
    const rooms = JSON.stringify({ rooms: Array.from({ length: 100 }, (_, i) => ({ roomId: `r${i}` })) }); // 201 keys
    expect((await post('/rooms', rooms)).body.fieldErrors).toEqual([
      { field: 'body', reason: `must not have more than ${ROOMS_KEYS} keys and array items in all` },
    ]);
    expect((await post('/rooms/batches', rooms)).status).toBe(200);
    const tooMany = JSON.stringify({ rooms: Array.from({ length: 300 }, (_, i) => ({ roomId: `r${i}` })) }); // 601 keys
    expect((await post('/rooms/batches', tooMany)).body.fieldErrors?.[0]?.field).toBe('body');
  });

  it('refuses invalid UTF-8 with a 400 naming the field that held it', async () => {
    const raw = Buffer.concat([Buffer.from('{"roomId":"r","roomName":"a'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]);
    expect(await post('/rooms', raw)).toEqual({
      status: 400,
      body: { message: 'roomName: must be valid UTF-8', fieldErrors: [{ field: 'roomName', reason: 'must be valid UTF-8' }] },
    });
  });

  it('reads a body sent in chunks without a Content-Length, and refuses one that grows past the limit with a 413', async () => {
    const chunked = (parts: string[]): Promise<globalThis.Response> =>
      fetch(`${base}/rooms`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: new ReadableStream({
          start(controller) {
            for (const part of parts) controller.enqueue(new TextEncoder().encode(part));
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
    const read = await chunked(['{"roomId":', '"r","roomName":', '"n"}']);
    expect([read.status, await read.json()]).toEqual([200, { body: { roomId: 'r', roomName: 'n' } }]);
    const tooLarge = await chunked(['{"roomName":"', 'x'.repeat(ROOMS_BYTES / 2), 'x'.repeat(ROOMS_BYTES / 2), '"}']);
    expect(tooLarge.status).toBe(413);
  });

  it('takes a UTF-8 byte-order mark and the charset however it is spelled, and refuses a compressed body naming its encoding', async () => {
    const withMark = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"roomId":"r"}')]);
    expect(await post('/rooms', withMark)).toEqual({ status: 200, body: { body: { roomId: 'r' } } });
    for (const type of ['application/json; charset=UTF-8', 'application/json;charset="utf-8"']) {
      expect((await post('/rooms', '{"roomId":"r"}', type)).status).toBe(200);
    }
    const gzip = await fetch(`${base}/rooms`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: '{"roomId":"r"}',
    });
    expect([gzip.status, ((await gzip.json()) as Answer['body']).message]).toEqual([415, 'Content-Encoding gzip is not accepted; send identity']);
  });

  it('gives up on a body whose client went away before its end', async () => {
    const [before, arrived] = [refusals.length, arrivals];
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST /rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"roomId":');
    await until(() => arrivals > arrived, 'the request at the guard');
    socket.destroy();
    await until(() => refusals.length > before, 'the read given up');
    expect(refusals.slice(before)).toEqual(['body: could not be read']);
  });
});
