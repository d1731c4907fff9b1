/**
 * capConnections on a real Node HTTP server over loopback: at the cap a new connection closes the
 * one idle longest and is served; with every connection busy it is refused; a connection that
 * answered its request is idle again, and the order of idleness is kept.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { until } from '../../test/support/async-probes.js';
import { RawHttpConnection } from '../../test/support/raw-http-connection.js';
import { capConnections } from './connection-cap.js';

const GET = 'GET /fast HTTP/1.1\r\nHost: cap\r\n\r\n';
const HANGING = 'GET /hang HTTP/1.1\r\nHost: cap\r\n\r\n';

let server: Server;
let connections: RawHttpConnection[] = [];
const events = { idleClosed: 0, refused: 0 };
/** Responses of /hang requests, held until the test ends them. */
let hanging: ServerResponse[] = [];

async function listen(maxConnections: number): Promise<number> {
  events.idleClosed = 0;
  events.refused = 0;
  server = createServer((request: IncomingMessage, response: ServerResponse) => {
    if (request.url === '/hang') hanging.push(response);
    else response.end('ok');
  });
  capConnections(server, maxConnections, {
    idleClosed: () => (events.idleClosed += 1),
    refused: () => (events.refused += 1),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function connectAndGet(port: number): Promise<RawHttpConnection> {
  const connection = await RawHttpConnection.open(port);
  connections.push(connection);
  expect((await connection.request(GET)).status).toBe(200);
  return connection;
}

afterEach(async () => {
  for (const response of hanging) response.end();
  for (const connection of connections) connection.destroy();
  hanging = [];
  connections = [];
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('capConnections', () => {
  it('closes the connection idle longest for a new one at the cap, and serves the new one', async () => {
    const port = await listen(3);
    const [first, second, third] = [await connectAndGet(port), await connectAndGet(port), await connectAndGet(port)];
    // The first becomes busy and idle again: now the second has been idle longest.
    expect((await first!.request(GET)).status).toBe(200);

    const fourth = await connectAndGet(port);
    await second!.closed;
    expect([first!.isOpen(), third!.isOpen(), fourth.isOpen()]).toEqual([true, true, true]);
    expect(events).toEqual({ idleClosed: 1, refused: 0 });
  });

  it('refuses a new connection when every open one has a request in flight, and takes one once a request ends', async () => {
    const port = await listen(2);
    const busy = [await RawHttpConnection.open(port), await RawHttpConnection.open(port)];
    connections.push(...busy);
    const answers = busy.map((connection) => connection.request(HANGING));
    await waitForHanging(2);

    const refused = await RawHttpConnection.open(port);
    connections.push(refused);
    await refused.closed;
    expect(events).toEqual({ idleClosed: 0, refused: 1 });
    expect(busy.map((connection) => connection.isOpen())).toEqual([true, true]);

    // Answered, the first is idle: a newcomer closes it instead of being refused.
    hanging[0]!.end('done');
    expect((await answers[0]!).body).toBe('done');
    const admitted = await connectAndGet(port);
    await busy[0]!.closed;
    expect(admitted.isOpen()).toBe(true);
    expect(busy[1]!.isOpen()).toBe(true);
    expect(events).toEqual({ idleClosed: 1, refused: 1 });
    hanging[1]!.end('done');
    expect((await answers[1]!).body).toBe('done');
  });

  it('counts a connection that sent nothing yet as idle', async () => {
    const port = await listen(1);
    const silent = await RawHttpConnection.open(port);
    connections.push(silent);
    const next = await connectAndGet(port);
    await silent.closed;
    expect(next.isOpen()).toBe(true);
    expect(events).toEqual({ idleClosed: 1, refused: 0 });
  });
});

/** Until `count` /hang requests reached the handler. */
function waitForHanging(count: number): Promise<void> {
  return until(() => hanging.length >= count, `${count} requests in flight`, 5_000);
}
