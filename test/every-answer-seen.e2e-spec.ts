/**
 * Every answer of the built gateway is seen: it carries X-Request-Id, gets its request log line
 * and is counted in /metrics under a route label that unknown paths cannot grow. That covers the
 * routes Swagger registers on Express (/docs, /docs-json, the UI's files), paths no route matches
 * or that do not decode (/%ff), `OPTIONS *`, and a request Node's HTTP server itself rejects
 * midway (a malformed chunked body: Node's 400, not a 499). Paths match exactly: /ROOMS and
 * /rooms/ are not /rooms.
 */
import { describe, expect, it } from '@jest/globals';
import { until } from './support/async-probes.js';
import type { LogLine } from './support/gateway-process.js';
import { metricSamples, metricSum, scrapeMetrics } from './support/prometheus-text.js';
import { RawHttpConnection, type RawHttpResponse } from './support/raw-http-connection.js';
import { scenario } from './support/scenario.js';

const APP_ID = 1414213562;
const SECRET = 'SENTINEL-secret-seen-5c2e8a0f7d3b9164';
const KEY = 'sk-SENTINEL-seen-8d1f4b7a2c6e0953';
const CLIENT_ID = 'svc-seen';

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { [CLIENT_ID]: KEY },
  // Every refusal gets its own line here: the sampling of refusal lines has its own suite.
  env: { LOG_REFUSALS: 'all', ZEGO_DEFAULT_FROM_USER_ID: 'seen-operator', CLIENT_RATE_LIMIT: '1000' },
});
const { fake } = s;
const gw = s.gatewayBeforeAll();

let requestCounter = 0;
const newRequestId = (): string => `seen-${++requestCounter}`;

/** One request on a connection of its own, byte for byte as given. */
async function raw(request: string): Promise<RawHttpResponse> {
  const connection = await RawHttpConnection.open(gw.port);
  try {
    return await connection.request(request);
  } finally {
    connection.destroy();
  }
}

async function requestsCounted(labels: Record<string, string>): Promise<number> {
  return metricSum(await scrapeMetrics(gw.url), 'zim_gateway_http_requests_total', labels);
}

/** The one request line of `requestId` (waits for it; fails on a second one). */
async function requestLine(requestId: string): Promise<LogLine> {
  const isIt = (line: LogLine): boolean => line.context === 'RequestLog' && line.requestId === requestId;
  const line = await gw.waitForLog(isIt);
  expect(gw.logLines().filter(isIt)).toHaveLength(1);
  return line;
}

describe('answers given outside the controllers', () => {
  it.each([
    { method: 'GET', target: '/docs', status: 200, route: '/docs' },
    { method: 'GET', target: '/docs-json', status: 200, route: '/docs-json' },
    { method: 'GET', target: '/docs/swagger-ui-init.js', status: 200, route: '/docs/swagger-ui-init.js' },
    { method: 'GET', target: '/docs/swagger-ui.css', status: 200, route: '/docs/swagger-ui.css' },
    { method: 'GET', target: '/docs/package.json', status: 404, route: 'unmatched' },
    { method: 'GET', target: '/%ff', status: 404, route: 'unmatched' },
    { method: 'OPTIONS', target: '*', status: 404, route: 'unmatched' },
    { method: 'OPTIONS', target: '/docs', status: 404, route: 'unmatched' },
  ])('$method $target: X-Request-Id, one log line and one count (route $route)', async ({ method, target, status, route }) => {
    const requestId = newRequestId();
    const labels = { method, route, status: String(status), client: 'none' };
    const before = await requestsCounted(labels);

    const answer = await raw(`${method} ${target} HTTP/1.1\r\nHost: gateway\r\nX-Request-Id: ${requestId}\r\n\r\n`);
    expect(answer.status).toBe(status);
    expect(answer.headers['x-request-id']).toBe(requestId);

    const line = await requestLine(requestId);
    expect(line).toMatchObject({ method, path: target, status });
    expect(line.route).toBe(route === 'unmatched' ? undefined : route);
    // Counted once the response closed, a moment after the client has it.
    await until(async () => (await requestsCounted(labels)) >= before + 1, `${method} ${target} counted`);
    expect(await requestsCounted(labels)).toBe(before + 1);
  });

  it('never makes a label of a path no route matched', async () => {
    await raw(`GET /no/such/%ff/path HTTP/1.1\r\nHost: gateway\r\n\r\n`);
    const routes = new Set(metricSamples(await scrapeMetrics(gw.url), 'zim_gateway_http_requests_total').map((sample) => sample.labels.route));
    expect([...routes].filter((route) => /%|\*|package\.json|no\/such/.test(route ?? ''))).toEqual([]);
    expect(routes).toContain('unmatched');
  });
});

describe("a request Node's HTTP server rejects midway", () => {
  it("is logged and counted with Node's 400, which the client gets with Connection: close", async () => {
    const requestId = newRequestId();
    const before = {
      answered400: await requestsCounted({ method: 'POST', status: '400' }),
      left499: await requestsCounted({ method: 'POST', status: '499' }),
      rejected: metricSum(await scrapeMetrics(gw.url), 'zim_gateway_http_rejected_connections_total', { status: '400' }),
    };
    const connection = await RawHttpConnection.open(gw.port);
    const answer = await connection.request(
      'POST /rooms HTTP/1.1\r\nHost: gateway\r\n' +
        `Authorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nX-Request-Id: ${requestId}\r\n` +
        // "ZZ" is no chunk size: llhttp stops at it.
        'Transfer-Encoding: chunked\r\n\r\nZZ\r\n{"roomId":"never"}\r\n0\r\n\r\n',
    );
    expect(answer).toMatchObject({ status: 400, headers: { connection: 'close' }, body: '' });
    await connection.closed;

    const line = await requestLine(requestId);
    expect(line).toMatchObject({ method: 'POST', path: '/rooms', status: 400 });
    expect(line.aborted).toBeUndefined();
    expect(line.message).toMatch(/^POST \/rooms 400 [\d.]+ ms$/);
    await until(async () => (await requestsCounted({ method: 'POST', status: '400' })) >= before.answered400 + 1, 'the 400 counted');
    const samples = await scrapeMetrics(gw.url);
    expect(metricSum(samples, 'zim_gateway_http_requests_total', { method: 'POST', status: '400' })).toBe(before.answered400 + 1);
    expect(metricSum(samples, 'zim_gateway_http_requests_total', { method: 'POST', status: '499' })).toBe(before.left499);
    expect(metricSum(samples, 'zim_gateway_http_rejected_connections_total', { status: '400' })).toBe(before.rejected + 1);
    expect(fake.createdRooms).not.toContain('never');
  });

  it('counts bytes that are no request at all as a rejected connection', async () => {
    const rejected = async (): Promise<number> =>
      metricSum(await scrapeMetrics(gw.url), 'zim_gateway_http_rejected_connections_total', { status: '400' });
    const before = await rejected();
    const connection = await RawHttpConnection.open(gw.port);
    expect(await connection.request('NOT HTTP AT ALL\r\n\r\n')).toMatchObject({ status: 400, headers: { connection: 'close' } });
    await connection.closed;
    await until(async () => (await rejected()) >= before + 1, 'the rejected connection counted');
    expect(await rejected()).toBe(before + 1);
  });
});

describe('paths match exactly: case and trailing slash', () => {
  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(`${gw.url}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  const get = (path: string): Promise<Response> => fetch(`${gw.url}${path}`, { headers: { Authorization: `Bearer ${KEY}` } });
  const statusOf = async (answer: Promise<Response>): Promise<number> => {
    const response = await answer;
    await response.arrayBuffer();
    return response.status;
  };

  it('POST /rooms creates the room; /ROOMS, /Rooms and /rooms/ are 404 and never reach the vendor', async () => {
    expect(await statusOf(post('/rooms', { roomId: 'exact-1' }))).toBe(201);
    expect(await statusOf(post('/ROOMS', { roomId: 'upper-1' }))).toBe(404);
    expect(await statusOf(post('/Rooms', { roomId: 'mixed-1' }))).toBe(404);
    expect(await statusOf(post('/rooms/', { roomId: 'slash-1' }))).toBe(404);
    expect(fake.createdRooms).toContain('exact-1');
    expect(fake.createdRooms.filter((roomId) => ['upper-1', 'mixed-1', 'slash-1'].includes(roomId))).toEqual([]);
  });

  it('the batch routes, with their :batchId, match exactly too', async () => {
    expect(await statusOf(post('/rooms/batches/', { rooms: [{ roomId: 'batch-slash-1' }] }))).toBe(404);
    const submitted = await post('/rooms/batches', { rooms: [{ roomId: 'batch-exact-1' }] });
    expect(submitted.status).toBe(202);
    const { batchId } = (await submitted.json()) as { batchId: string };
    expect(await statusOf(get(`/rooms/batches/${batchId}`))).toBe(200);
    expect(await statusOf(get(`/rooms/batches/${batchId}/`))).toBe(404);
    expect(await statusOf(get(`/ROOMS/batches/${batchId}`))).toBe(404);
    expect(await statusOf(get(`/rooms/Batches/${batchId}`))).toBe(404);
  });

  it('the probes and the metrics answer at their exact paths only', async () => {
    for (const path of ['/health/live', '/health/ready', '/metrics']) {
      expect({ path, status: await statusOf(get(path)) }).toEqual({ path, status: 200 });
      for (const other of [`${path}/`, path.toUpperCase()]) {
        expect({ other, status: await statusOf(get(other)) }).toEqual({ other, status: 404 });
      }
    }
  });
});
