/**
 * Client connections of the built gateway, as configured: an idle keep-alive connection is closed
 * after HTTP_KEEP_ALIVE_TIMEOUT_MS (and the default announces 65 s, above the load balancers'
 * 60 s); at HTTP_MAX_CONNECTIONS a new connection closes the one idle longest and is served, and
 * is refused only while every open connection has a request in flight; /metrics counts both.
 */
import { describe, expect, it } from '@jest/globals';
import { waitFor } from './support/async-probes.js';
import type { GatewayProcess } from './support/gateway-process.js';
import { metricSum, parseMetrics } from './support/prometheus-text.js';
import { RawHttpConnection } from './support/raw-http-connection.js';
import { scenario } from './support/scenario.js';

const APP_ID = 1732050807;
const SECRET = 'SENTINEL-secret-conns-2b7d9f1e4a6c8053';
const KEY = 'sk-SENTINEL-conns-6e0a3c9b5d1f7248';
const START_TIMEOUT = 30_000;
/** Node closes an idle connection this long after the keep-alive timeout it announced. */
const NODE_KEEP_ALIVE_BUFFER_MS = 1000;

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { 'svc-conns': KEY },
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'conns-operator' },
});
const { fake } = s;

const LIVE = 'GET /health/live HTTP/1.1\r\nHost: gateway\r\n\r\n';

/** A connection that has had one request answered: idle from then on. */
async function idleConnection(gateway: GatewayProcess): Promise<RawHttpConnection> {
  const connection = await RawHttpConnection.open(gateway.port);
  expect((await connection.request(LIVE)).status).toBe(200);
  return connection;
}

/** The connection-cap counters, read over a connection already open (a new one would count itself). */
async function capCounts(connection: RawHttpConnection): Promise<{ closed_idle: number; refused: number }> {
  const answer = await connection.request('GET /metrics HTTP/1.1\r\nHost: gateway\r\n\r\n');
  expect(answer.status).toBe(200);
  const samples = parseMetrics(answer.body);
  return {
    closed_idle: metricSum(samples, 'zim_gateway_http_connection_cap_total', { action: 'closed_idle' }),
    refused: metricSum(samples, 'zim_gateway_http_connection_cap_total', { action: 'refused' }),
  };
}

describe('HTTP_KEEP_ALIVE_TIMEOUT_MS', () => {
  it('closes an idle keep-alive connection after the configured time, and announces it', async () => {
    const gateway = await s.startGateway({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '1000' });
    const connection = await RawHttpConnection.open(gateway.port);
    const answer = await connection.request(LIVE);
    expect(answer.status).toBe(200);
    expect(answer.headers['keep-alive']).toBe('timeout=1');
    const idleMs = (await connection.closed) - answer.receivedAt;
    expect(idleMs).toBeGreaterThanOrEqual(1000);
    // Node's buffer, and a busy machine's lateness.
    expect(idleMs).toBeLessThan(1000 + NODE_KEEP_ALIVE_BUFFER_MS + 3000);
  }, START_TIMEOUT);
});

describe('HTTP_MAX_CONNECTIONS', () => {
  it('at the cap, closes the connection idle longest for a new one, which is served', async () => {
    const gateway = await s.startGateway({ HTTP_MAX_CONNECTIONS: '3' });
    const [first, second, third] = [await idleConnection(gateway), await idleConnection(gateway), await idleConnection(gateway)];
    // The default keep-alive stays above the load balancers' 60 s.
    expect((await first!.request(LIVE)).headers['keep-alive']).toBe('timeout=65');
    // The first was busy again: now the second has been idle longest.

    const fourth = await idleConnection(gateway);
    await second!.closed;
    expect([first!.isOpen(), third!.isOpen(), fourth.isOpen()]).toEqual([true, true, true]);
    expect(await capCounts(fourth)).toEqual({ closed_idle: 1, refused: 0 });
    for (const connection of [first!, third!, fourth]) connection.destroy();
  }, START_TIMEOUT);

  it('refuses a new connection while every open one has a request in flight, and takes new ones again after', async () => {
    const gateway = await s.startGateway({ HTTP_MAX_CONNECTIONS: '3', ZEGO_TIMEOUT_MS: '2000', ZEGO_MAX_ATTEMPTS: '1' });
    // Three room requests the vendor holds until the gateway's vendor timeout (504).
    fake.injectFault({ kind: 'hang', times: 3 });
    const callsBefore = fake.calls.length;
    const busy = await Promise.all([0, 1, 2].map(() => RawHttpConnection.open(gateway.port)));
    const answers = busy.map((connection, index) => {
      const body = JSON.stringify({ roomId: `conns-busy-${index}` });
      return connection.request(
        `POST /rooms HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${KEY}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
    await waitFor(() => fake.calls.length >= callsBefore + 3, { what: 'three calls held at the vendor' });

    const refused = await RawHttpConnection.open(gateway.port);
    await refused.closed;
    expect(refused.unread()).toBe('');
    expect(busy.map((connection) => connection.isOpen())).toEqual([true, true, true]);

    // Answered (504), the three are idle: a new connection closes the one idle longest.
    expect((await Promise.all(answers)).map((answer) => answer.status)).toEqual([504, 504, 504]);
    const admitted = await idleConnection(gateway);
    await waitFor(() => busy.filter((connection) => connection.isOpen()).length < 3, { what: 'an idle connection closed' });
    expect(busy.filter((connection) => connection.isOpen())).toHaveLength(2);
    expect(await capCounts(admitted)).toEqual({ closed_idle: 1, refused: 1 });
    for (const connection of [...busy, admitted]) connection.destroy();
  }, START_TIMEOUT);
});
