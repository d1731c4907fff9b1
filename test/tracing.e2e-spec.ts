/**
 * OpenTelemetry traces end to end: built gateways started as `npm start` starts them (the tracing
 * preload), exporting to a stand-in OTLP receiver over real HTTP, in both encodings. A caller's
 * W3C trace is continued; the gateway's own spans say who called, how the budget wait and each
 * vendor attempt went; the vendor gets no trace headers; batch rooms are traces of their own
 * linked to their submission; every log line of a traced request names its trace; nothing secret
 * leaves in a span. With no endpoint set, the preload loads nothing of the SDK.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ZimCode } from './fake-zim/fake-zim-server.js';
import { until } from './support/async-probes.js';
import { batchClient, roomsNamed } from './support/batch-client.js';
import { npmStartNodeOptions, REPO_ROOT, runGatewayExpectingExit, type GatewayProcess } from './support/gateway-process.js';
import { OtlpReceiver, payloadText, SpanKind, type ReceivedSpan } from './support/otlp-receiver.js';
import type { ReceivedTrace } from './support/received-trace.js';
import { scenario } from './support/scenario.js';
import { findLeaks } from './support/secret-scan.js';

const APP_ID = 1618033988;
const SECRET = 'SENTINEL-secret-tracing-6d2b9f41c7e3';
const KEY = 'sk-SENTINEL-tracing-a-0c5e8b3d71f2';
const QUOTA_KEY = 'sk-SENTINEL-tracing-q-94a1d6e0b7c3';
const CALLBACK_SECRET = 'SENTINEL-callback-secret-tracing-2f8a';

const SPAN = {
  apiKey: 'gateway api key',
  clientQuota: 'gateway client quota',
  validation: 'gateway validation',
  idempotencyKey: 'gateway idempotency key',
  budgetWait: 'gateway budget wait',
  createRoom: 'ZIM CreateRoom',
  batchRoom: 'gateway batch room',
};
const HTTP_SCOPE = '@opentelemetry/instrumentation-http';
const IOREDIS_SCOPE = '@opentelemetry/instrumentation-ioredis';
const TRACE_HEADERS = ['traceparent', 'tracestate', 'baggage'];

/** A caller's W3C trace context: a fresh trace id, its own span id. */
function callerTrace(): { traceId: string; spanId: string; headers: Record<string, string> } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return {
    traceId,
    spanId,
    headers: { traceparent: `00-${traceId}-${spanId}-01`, tracestate: 'caller=t61rcWkgMzE', baggage: 'team=checkout' },
  };
}

const collector = new OtlpReceiver();
/** Batch callbacks land here: the one outgoing call that may carry trace headers. */
const callbacks: IncomingHttpHeaders[] = [];
const callbackServer = createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    callbacks.push(request.headers);
    response.writeHead(204).end();
  });
});

beforeAll(async () => {
  await collector.start();
  await new Promise<void>((resolve) => callbackServer.listen(0, '127.0.0.1', resolve));
});

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { 'svc-trace': KEY, 'svc-quota': QUOTA_KEY },
  redis: 'private',
  nodeOptions: npmStartNodeOptions(),
  env: {
    ZEGO_DEFAULT_FROM_USER_ID: 'trace-operator',
    CLIENT_RATE_LIMIT: '1000',
    CLIENT_RATE_LIMITS: 'svc-quota:1',
    // Spans go out a tenth of a second after they end, not five seconds.
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e',
  },
});

/** http/protobuf (the default) through OTEL_EXPORTER_OTLP_ENDPOINT, the budget shared in Redis. */
const protobufGateway = s.gatewayBeforeAll(() => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
  OTEL_SERVICE_NAME: 'gateway-protobuf',
  REDIS_URL: s.redis.url,
  BATCH_CALLBACK_HOSTS: `127.0.0.1:${(callbackServer.address() as AddressInfo).port}`,
  BATCH_CALLBACK_SECRET: CALLBACK_SECRET,
}));

/** http/json through OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, without Redis (the budget local). */
const jsonGateway = s.gatewayBeforeAll(() => ({
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: collector.tracesUrl,
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
  OTEL_SERVICE_NAME: 'gateway-json',
}));

afterAll(async () => {
  await collector.stop();
  await new Promise<void>((resolve) => callbackServer.close(() => resolve()));
});

async function createRoom(
  gateway: GatewayProcess,
  roomId: string,
  headers: Record<string, string> = {},
  key = KEY,
): Promise<{ status: number; requestId: string }> {
  const response = await fetch(`${gateway.url}/rooms`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ roomId, roomName: 'traced' }),
  });
  await response.arrayBuffer();
  return { status: response.status, requestId: response.headers.get('x-request-id') ?? '' };
}

/** The gateway's server span for the request: the one the HTTP instrumentation made. */
function serverSpan(trace: ReceivedTrace): ReceivedSpan {
  const servers = trace.byScope(HTTP_SCOPE).filter((span) => span.kind === SpanKind.server);
  expect(servers).toHaveLength(1);
  return servers[0]!;
}

const withServerSpan = (trace: ReceivedTrace): boolean => trace.byScope(HTTP_SCOPE).some((span) => span.kind === SpanKind.server);

describe('a POST /rooms traced through the gateway (http/protobuf, budget shared in Redis)', () => {
  const caller = callerTrace();
  let trace: ReceivedTrace;
  let requestId: string;

  beforeAll(async () => {
    const answer = await createRoom(protobufGateway, 'traced-room-1', caller.headers);
    expect(answer.status).toBe(201);
    requestId = answer.requestId;
    trace = await collector.trace(caller.traceId, (t) => withServerSpan(t) && t.has(SPAN.createRoom));
  });

  it("continues the caller's trace: the gateway's server span is a child of the caller's span, with its tracestate", () => {
    const server = serverSpan(trace);
    expect(server).toMatchObject({ parentSpanId: caller.spanId, traceState: 'caller=t61rcWkgMzE', name: 'POST /rooms' });
    expect(server.attributes['http.route']).toBe('/rooms');
    expect(server.resource).toMatchObject({ 'service.name': 'gateway-protobuf', 'deployment.environment.name': 'e2e' });
    for (const span of trace.spans.filter((other) => other !== server)) {
      expect({ span: span.name, under: trace.descendsFrom(span, server) }).toEqual({ span: span.name, under: true });
    }
  });

  it('names the client and how the API key, the quota and validation went', () => {
    expect(trace.one(SPAN.apiKey).attributes).toMatchObject({ 'zim_gateway.client.id': 'svc-trace', 'zim_gateway.outcome': 'accepted' });
    expect(trace.one(SPAN.clientQuota).attributes).toMatchObject({ 'zim_gateway.client.id': 'svc-trace', 'zim_gateway.outcome': 'allowed' });
    expect(trace.one(SPAN.validation).attributes).toMatchObject({ 'zim_gateway.outcome': 'valid' });
  });

  it('shows the wait for the budget: the client, its priority, the wait, the mode and whether the slot was traded', () => {
    const wait = trace.one(SPAN.budgetWait);
    expect(wait.attributes).toMatchObject({
      'zim_gateway.client.id': 'svc-trace',
      'zim_gateway.priority': 'interactive',
      'zim_gateway.budget.mode': 'shared',
      'zim_gateway.budget.traded': false,
      'zim_gateway.outcome': 'granted',
    });
    expect(wait.attributes['zim_gateway.budget.wait_ms']).toEqual(expect.any(Number));
  });

  it('shows the vendor attempt as a client span: action, vendor code, attempt, whether it may have acted; no signature in its URL', () => {
    const attempt = trace.one(SPAN.createRoom);
    expect(attempt.kind).toBe(SpanKind.client);
    expect(attempt.attributes).toMatchObject({
      'zim.action': 'CreateRoom',
      'zim.attempt': 1,
      'zim.vendor_code': ZimCode.success,
      'zim.may_have_acted': true,
      'zim_gateway.outcome': 'success',
      'http.request.method': 'POST',
      'http.response.status_code': 200,
      'server.address': '127.0.0.1',
    });
    const url = new URL(String(attempt.attributes['url.full']));
    expect(url.searchParams.get('Action')).toBe('CreateRoom');
    // Left out where the URL is written, and redacted again on the way out, as in the log lines.
    expect(url.searchParams.get('Signature')).toBe('[redacted]');
    expect(url.searchParams.get('SignatureNonce')).toBe('[redacted]');
    // The HTTP instrumentation made no span of its own for the vendor call.
    expect(trace.byScope(HTTP_SCOPE).filter((span) => span.kind === SpanKind.client)).toEqual([]);
  });

  it('holds the Redis commands the request made (ioredis instrumentation) and the route (Express instrumentation)', () => {
    expect(trace.byScope(IOREDIS_SCOPE).length).toBeGreaterThan(0);
    // The command's name only: its arguments are keys, fingerprints and stored answers.
    for (const span of trace.byScope(IOREDIS_SCOPE)) expect(span.attributes['db.query.text']).toMatch(/^[a-z]+$/);
    expect(trace.byScope('@opentelemetry/instrumentation-express').length).toBeGreaterThan(0);
  });

  it('sends the vendor no trace headers: the vendor is a third party', () => {
    const call = s.fake.calls.find((c) => (c.body as { RoomId?: string } | undefined)?.RoomId === 'traced-room-1');
    expect(call).toBeDefined();
    expect(TRACE_HEADERS.filter((header) => call!.headers[header] !== undefined)).toEqual([]);
  });

  it("writes the request's log line with its trace id and the id of a span of that trace", async () => {
    const line = await protobufGateway.waitForLog((l) => l.context === 'RequestLog' && l.requestId === requestId);
    expect(line.trace_id).toBe(caller.traceId);
    expect(trace.spans.map((span) => span.spanId)).toContain(line.span_id);
  });
});

describe('what else the spans of a request tell (http/protobuf)', () => {
  it('an attempt the vendor may have acted on, and the retry after it, each a span of its own', async () => {
    const caller = callerTrace();
    s.fake.injectFault({ kind: 'resetAfterCreate', times: 1 });
    expect((await createRoom(protobufGateway, 'traced-room-reset', caller.headers)).status).toBe(201);
    const trace = await collector.trace(caller.traceId, (t) => withServerSpan(t) && t.all(SPAN.createRoom).length === 2);
    const [first, second] = trace.all(SPAN.createRoom).sort((a, b) => Number(a.attributes['zim.attempt']) - Number(b.attributes['zim.attempt']));
    expect(first!.attributes).toMatchObject({ 'zim.attempt': 1, 'zim.may_have_acted': true, 'zim_gateway.outcome': 'unreachable' });
    expect(first!.attributes['zim.vendor_code']).toBeUndefined();
    expect(first!.status.code).toBe(2);
    // The room the first attempt created: the vendor says it exists, which the gateway reads as done.
    expect(second!.attributes).toMatchObject({ 'zim.attempt': 2, 'zim.vendor_code': ZimCode.roomExists, 'zim.may_have_acted': false });
    expect(trace.all(SPAN.budgetWait)).toHaveLength(2);
  });

  it('an Idempotency-Key replay: the key span says replayed, and nothing goes to the vendor', async () => {
    const first = callerTrace();
    const again = callerTrace();
    const key = { 'Idempotency-Key': `trace-replay-${Date.now()}` };
    expect((await createRoom(protobufGateway, 'traced-room-idem', { ...first.headers, ...key })).status).toBe(201);
    expect((await createRoom(protobufGateway, 'traced-room-idem', { ...again.headers, ...key })).status).toBe(201);
    const claimed = await collector.trace(first.traceId, (t) => withServerSpan(t) && t.has(SPAN.createRoom));
    const replayed = await collector.trace(again.traceId, (t) => withServerSpan(t) && t.has(SPAN.idempotencyKey));
    expect(claimed.one(SPAN.idempotencyKey).attributes).toMatchObject({ 'zim_gateway.outcome': 'claimed', 'zim_gateway.client.id': 'svc-trace' });
    expect(replayed.one(SPAN.idempotencyKey).attributes).toMatchObject({ 'zim_gateway.outcome': 'replayed' });
    expect(replayed.has(SPAN.createRoom)).toBe(false);
  });

  it('refusals: an unknown key, a body refused by validation, a client over its quota', async () => {
    const unknownKey = callerTrace();
    expect((await createRoom(protobufGateway, 'refused-1', unknownKey.headers, 'sk-not-a-known-key')).status).toBe(401);
    const invalid = callerTrace();
    const response = await fetch(`${protobufGateway.url}/rooms`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', ...invalid.headers },
      body: JSON.stringify({ roomId: '', roomName: 5 }),
    });
    expect(response.status).toBe(400);
    // Its quota is one request per second: the second of two at once is refused.
    const quota = [callerTrace(), callerTrace()];
    const statuses = await Promise.all(quota.map((caller, i) => createRoom(protobufGateway, `quota-${Date.now()}-${i}`, caller.headers, QUOTA_KEY)));
    expect(statuses.map((a) => a.status).sort()).toEqual([201, 429]);

    const apiKey = (await collector.trace(unknownKey.traceId, (t) => withServerSpan(t) && t.has(SPAN.apiKey))).one(SPAN.apiKey);
    expect(apiKey.attributes).toMatchObject({ 'zim_gateway.outcome': 'unknown', 'error.type': 'UnauthorizedError' });
    expect(apiKey.attributes['zim_gateway.client.id']).toBeUndefined();
    // A refusal answered on purpose is not a failure of the span.
    expect(apiKey.status.code).toBe(0);
    const validation = (await collector.trace(invalid.traceId, (t) => withServerSpan(t) && t.has(SPAN.validation))).one(SPAN.validation);
    expect(validation.attributes).toMatchObject({ 'zim_gateway.outcome': 'invalid', 'zim_gateway.validation.invalid_fields': 2 });
    const refused = statuses.findIndex((a) => a.status === 429);
    const quotaSpan = (await collector.trace(quota[refused]!.traceId, (t) => withServerSpan(t) && t.has(SPAN.clientQuota))).one(SPAN.clientQuota);
    expect(quotaSpan.attributes).toMatchObject({ 'zim_gateway.client.id': 'svc-quota', 'zim_gateway.outcome': 'refused' });
  });
});

describe('a batch traced: each room a trace of its own, linked to the request that submitted it', () => {
  const caller = callerTrace();
  let rooms: ReceivedSpan[];
  let submission: ReceivedTrace;

  beforeAll(async () => {
    const batches = batchClient(() => protobufGateway, KEY);
    const callbackUrl = `http://127.0.0.1:${(callbackServer.address() as AddressInfo).port}/batch-ended`;
    const accepted = await batches.submit({ rooms: roomsNamed(`traced-batch-${Date.now()}`, 2), callbackUrl }, caller.headers);
    expect(accepted.status).toBe(202);
    await batches.untilEnded(String(accepted.body['batchId']));
    submission = await collector.trace(caller.traceId, withServerSpan);
    const linkedRooms = (): ReceivedSpan[] =>
      collector.spans().filter((span) => span.name === SPAN.batchRoom && span.links.some((link) => link.traceId === caller.traceId));
    await until(() => linkedRooms().length === 2, 'a batch room span per room, linked to the submission');
    rooms = linkedRooms();
  });

  it('starts a new trace per room, linked to a span of the submitting trace', () => {
    const submitted = new Set(submission.spans.map((span) => span.spanId));
    for (const room of rooms) {
      expect(room.parentSpanId).toBe('');
      expect(room.traceId).not.toBe(caller.traceId);
      expect(room.links).toHaveLength(1);
      expect(submitted.has(room.links[0]!.spanId)).toBe(true);
      expect(room.attributes).toMatchObject({ 'zim_gateway.client.id': 'svc-trace', 'zim_gateway.outcome': 'created' });
    }
    expect(new Set(rooms.map((room) => room.traceId)).size).toBe(2);
  });

  it("puts each room's budget wait (at batch priority) and vendor attempt in the room's trace", async () => {
    for (const room of rooms) {
      const trace = await collector.trace(room.traceId, (t) => t.has(SPAN.createRoom) && t.has(SPAN.budgetWait));
      expect(trace.one(SPAN.budgetWait).attributes).toMatchObject({ 'zim_gateway.priority': 'batch', 'zim_gateway.client.id': 'svc-trace' });
      expect(trace.descendsFrom(trace.one(SPAN.createRoom), room)).toBe(true);
    }
  });

  it('propagates trace context to the batch callback (an internal host), as it never does to the vendor', async () => {
    await until(() => callbacks.length > 0, 'the batch callback');
    // The HTTP instrumentation's client span of the callback, whose context the callback carries.
    const [, traceId, spanId] = String(callbacks[0]!['traceparent'] ?? '').split('-');
    const callbackSpans = await collector.waitForSpans((span) => span.traceId === traceId && span.spanId === spanId);
    expect(callbackSpans[0]).toMatchObject({ scope: HTTP_SCOPE, kind: SpanKind.client });
    const roomCalls = s.fake.calls.filter((c) => String((c.body as { RoomId?: string } | undefined)?.RoomId).startsWith('traced-batch-'));
    expect(roomCalls).toHaveLength(2);
    expect(roomCalls.flatMap((call) => TRACE_HEADERS.filter((header) => call.headers[header] !== undefined))).toEqual([]);
  });
});

describe('http/json through OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, the budget local (no Redis)', () => {
  it('exports the same spans as OTLP/JSON', async () => {
    const caller = callerTrace();
    expect((await createRoom(jsonGateway, 'traced-room-json', caller.headers)).status).toBe(201);
    const trace = await collector.trace(caller.traceId, (t) => withServerSpan(t) && t.has(SPAN.createRoom));
    expect(serverSpan(trace)).toMatchObject({ parentSpanId: caller.spanId, resource: expect.objectContaining({ 'service.name': 'gateway-json' }) });
    expect(trace.one(SPAN.budgetWait).attributes).toMatchObject({ 'zim_gateway.budget.mode': 'local', 'zim_gateway.outcome': 'granted' });
    const encodings = new Set(collector.exports().map((e) => `${e.encoding} ${String(e.headers['content-type'])}`));
    expect([...encodings].sort()).toEqual(['json application/json', 'protobuf application/x-protobuf']);
  });
});

describe('nothing secret leaves in a span', () => {
  it('no export holds the ServerSecret, an API key, a Signature or a SignatureNonce the vendor received', async () => {
    // One more exchange, so the exports hold a batch of everything the gateways did.
    const caller = callerTrace();
    await createRoom(protobufGateway, `traced-room-last-${Date.now()}`, caller.headers);
    await collector.trace(caller.traceId, (t) => withServerSpan(t) && t.has(SPAN.createRoom));
    const haystacks = Object.fromEntries(
      collector.exports().flatMap((e, i) => [
        [`export ${i}`, payloadText(e)],
        [`export ${i} decoded`, JSON.stringify(collector.spans())],
      ]),
    );
    const needles: Record<string, string> = { 'the ServerSecret': SECRET, 'API key svc-trace': KEY, 'API key svc-quota': QUOTA_KEY, 'the callback secret': CALLBACK_SECRET };
    s.fake.calls.forEach((call, i) => {
      needles[`Signature of vendor call ${i}`] = call.query['Signature'] ?? '';
      needles[`SignatureNonce of vendor call ${i}`] = call.query['SignatureNonce'] ?? '';
    });
    expect(s.fake.calls.length).toBeGreaterThan(5);
    expect(findLeaks(haystacks, needles)).toEqual([]);
  });
});

describe('tracing off', () => {
  /**
   * Which @opentelemetry packages a process resolves while the preload runs: a hook registered
   * before it records every module resolved from node_modules/@opentelemetry.
   */
  function packagesThePreloadLoads(env: Record<string, string>): string[] {
    const recorder = [
      "import { registerHooks } from 'node:module';",
      'const seen = new Set();',
      'registerHooks({ resolve(specifier, context, next) {',
      '  const resolved = next(specifier, context);',
      "  const match = /node_modules\\/(@opentelemetry\\/[^/]+)\\//.exec(resolved.url);",
      '  if (match) seen.add(match[1]);',
      '  return resolved;',
      '} });',
      "process.on('exit', () => process.stdout.write(JSON.stringify([...seen].sort())));",
    ].join('\n');
    const run = spawnSync(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(recorder)}`, ...npmStartNodeOptions(), '--input-type=module', '-e', ''],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 20_000 },
    );
    expect(run.status).toBe(0);
    return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as string[];
  }

  it('without an OTLP endpoint the preload loads nothing of OpenTelemetry; with one it loads the SDK', () => {
    expect(packagesThePreloadLoads({})).toEqual([]);
    expect(packagesThePreloadLoads({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toEqual([]);
    expect(packagesThePreloadLoads({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SDK_DISABLED: 'true' })).toEqual([]);
    expect(packagesThePreloadLoads({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url })).toEqual(
      expect.arrayContaining(['@opentelemetry/sdk-node', '@opentelemetry/instrumentation-http', '@opentelemetry/exporter-trace-otlp-proto']),
    );
  });

  it('a gateway without an endpoint writes no trace ids in its log lines', async () => {
    const gateway = await s.startGateway();
    expect((await createRoom(gateway, 'untraced-room')).status).toBe(201);
    const line = await gateway.waitForLog((l) => l.context === 'RequestLog' && l.status === 201);
    expect(line.trace_id).toBeUndefined();
    expect(line.span_id).toBeUndefined();
  });

  it('an OTLP protocol the gateway does not ship stops it at start-up, as any bad setting does', async () => {
    const result = await runGatewayExpectingExit(s.env({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' }), {
      nodeOptions: npmStartNodeOptions(),
    });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: must be one of http/protobuf, http/json');
  });
});
