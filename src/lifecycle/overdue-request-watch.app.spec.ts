/**
 * The overdue watch in a real Nest application over loopback HTTP: the gateway's own global
 * middleware (arrival and deadline, request id), ApiKeyGuard and JsonBodyGuard, the watch and its
 * metric on GET /metrics, around a test-only controller whose handler never answers. Requests
 * that really hang are reported once, by the stage they hang in, in the log and on /metrics; a
 * request answered in time is not; a request that ends leaves the registry at once.
 *
 * In process rather than against the built gateway (test/*.e2e-spec.ts): a real gateway has no
 * request that hangs on purpose, and should not.
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Controller,
  type INestApplication,
  type MiddlewareConsumer,
  Module,
  type NestModule,
  Post,
  UseGuards,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Registry } from 'prom-client';
import { apiKeysValue } from '../../test/support/api-keys.js';
import { until } from '../../test/support/async-probes.js';
import { loggingConfig, MemoryDestination } from '../../test/support/memory-log-destination.js';
import { metricSamples, parseMetrics, type MetricSample } from '../../test/support/prometheus-text.js';
import { loadConfig } from '../app-config.js';
import { ApiKeyGuard } from '../auth/api-key.guard.js';
import { ApiKeyStore } from '../auth/api-key-store.js';
import { ConfigModule } from '../config/config.module.js';
import { JsonBodyGuard } from '../http/json-body.guard.js';
import { RequestBodyModule } from '../http/request-body.module.js';
import { inRequestStage } from '../http/request-progress.js';
import { RequestIdMiddleware } from '../http/request-id.middleware.js';
import { REQUEST_STAGES } from '../http/request-stage.js';
import { UnreadBodyMiddleware } from '../http/unread-body.middleware.js';
import { createLogger } from '../logging/create-logger.js';
import { MetricsController } from '../metrics/metrics.controller.js';
import { registerOverdueRequestMetrics } from '../metrics/overdue-requests.metrics.js';
import { InFlightRequests, InFlightRequestsMiddleware } from './in-flight-requests.js';
import { LifecycleModule } from './lifecycle.module.js';
import { OVERDUE_AFTER_DEADLINE_MS, OVERDUE_CHECK_INTERVAL_MS, OverdueRequestWatch } from './overdue-request-watch.js';

const SECRET = 'SENTINEL-overdue-app-secret-8e2d41';
const KEY = 'sk-SENTINEL-overdue-app-key-3c7f90b1';
const DEADLINE_MS = 300;
const config = loadConfig({
  ZEGO_APP_ID: '1357911',
  ZEGO_SERVER_SECRET: SECRET,
  API_KEYS: apiKeysValue({ 'team-stuck': KEY }),
  ZEGO_TIMEOUT_MS: '100',
  ZEGO_CALL_DEADLINE_MS: String(DEADLINE_MS),
});

/** Test-only: handlers that never answer, in the stage a stuck vendor call would leave them in. */
@Controller('stuck')
@UseGuards(ApiKeyGuard)
class StuckController {
  @Post('slot')
  @UseGuards(JsonBodyGuard)
  waitsForASlotForever(): Promise<never> {
    return inRequestStage('outbound slot', () => new Promise<never>(() => undefined));
  }

  @Post('answered')
  answersAtOnce(): { ok: true } {
    return { ok: true };
  }
}

const OVERDUE_METRICS = Symbol('overdue metrics');

@Module({
  imports: [ConfigModule.forRoot(config), LifecycleModule, RequestBodyModule],
  controllers: [MetricsController, StuckController],
  providers: [
    { provide: Registry, useFactory: () => new Registry() },
    { provide: OVERDUE_METRICS, inject: [Registry, OverdueRequestWatch], useFactory: registerOverdueRequestMetrics },
    ApiKeyStore,
    ApiKeyGuard,
  ],
})
class StuckAppModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    // The gateway's global middleware that the watch relies on, in AppModule's order.
    consumer.apply(InFlightRequestsMiddleware, RequestIdMiddleware, UnreadBodyMiddleware).forRoutes('{*path}');
  }
}

const log = new MemoryDestination();
let app: INestApplication;
let base: string;
const hanging: ClientRequest[] = [];

beforeAll(async () => {
  app = await NestFactory.create(StuckAppModule, {
    bodyParser: false,
    logger: createLogger(loggingConfig('info', SECRET), { destination: log }),
    abortOnError: false,
  });
  await app.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const request of hanging) request.destroy();
  await app?.close();
});

/** Sends a POST whose body is `sent` of `declaredBytes` and that is never finished; the caller may hang up later. */
function hangingPost(path: string, requestId: string, sent: string, declaredBytes = Buffer.byteLength(sent)): ClientRequest {
  const request = httpRequest(`${base}${path}?token=never-logged-query`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${KEY}`,
      'content-type': 'application/json',
      'content-length': String(declaredBytes),
      'x-request-id': requestId,
    },
  });
  request.on('error', () => undefined); // hung up by the test
  request.write(sent);
  if (Buffer.byteLength(sent) === declaredBytes) request.end();
  hanging.push(request);
  return request;
}

const overdueLines = (): Record<string, unknown>[] => log.lines.filter((line) => line.context === 'OverdueRequests');
const overdueLine = (requestId: string) => overdueLines().find((line) => (line.params as { requestId?: string }).requestId === requestId);

async function scrape(): Promise<MetricSample[]> {
  const response = await fetch(`${base}/metrics`);
  expect(response.status).toBe(200);
  return parseMetrics(await response.text());
}

const overdueCount = (samples: MetricSample[], waitingOn: string): number | undefined =>
  metricSamples(samples, 'zim_gateway_overdue_requests_total', { waiting_on: waitingOn })[0]?.value;

describe('requests that never end, in a real application', () => {
  it('has every overdue series at 0 from the start', async () => {
    const samples = await scrape();
    for (const stage of REQUEST_STAGES) expect(overdueCount(samples, stage)).toBe(0);
  });

  it('reports each one once, a second past its deadline, by what it waits on; never one answered in time', async () => {
    const body = JSON.stringify({ roomId: 'room-stuck', roomName: 'never-logged-name' });
    const stuckInSlot = hangingPost('/stuck/slot', 'req-stuck-slot', body);
    // Half a body, and the rest never comes: stuck in JsonBodyGuard, which reads it.
    hangingPost('/stuck/slot', 'req-stuck-body', body.slice(0, 10), Buffer.byteLength(body));
    const answered = await fetch(`${base}/stuck/answered`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'x-request-id': 'req-answered' },
      body,
    });
    expect(answered.status).toBe(201);

    await until(() => overdueLines().length >= 2, 'two overdue lines', 10_000);
    const slot = overdueLine('req-stuck-slot');
    expect(slot).toMatchObject({
      level: 'warn',
      message: expect.stringMatching(
        /^POST \/stuck\/slot \(request req-stuck-slot, client team-stuck\) still open after \d+ ms, past its 300 ms deadline: waiting on outbound slot$/,
      ),
      params: {
        requestId: 'req-stuck-slot',
        method: 'POST',
        route: '/stuck/slot',
        clientId: 'team-stuck',
        deadlineMs: DEADLINE_MS,
        waitingOn: 'outbound slot',
      },
    });
    expect((slot!.params as { openMs: number }).openMs).toBeGreaterThan(DEADLINE_MS + OVERDUE_AFTER_DEADLINE_MS);
    expect(overdueLine('req-stuck-body')).toMatchObject({
      params: { requestId: 'req-stuck-body', route: '/stuck/slot', waitingOn: 'request body' },
    });
    expect(overdueLine('req-answered')).toBeUndefined();

    const samples = await scrape();
    expect(overdueCount(samples, 'outbound slot')).toBe(1);
    expect(overdueCount(samples, 'request body')).toBe(1);
    expect(overdueCount(samples, 'handler')).toBe(0);

    // Never the key, the query, the body or a header in what the watch wrote.
    const written = JSON.stringify(overdueLines());
    for (const never of [KEY, 'never-logged', 'authorization', 'room-stuck']) expect(written).not.toContain(never);

    // Reported once: still open after several more looks, still one line each. (Only letting the
    // watch look again can show that nothing more comes.)
    const inFlight = app.get(InFlightRequests);
    const stillOpen = inFlight.count;
    await sleep(4 * OVERDUE_CHECK_INTERVAL_MS);
    expect(overdueLines()).toHaveLength(2);
    expect(inFlight.count).toBe(stillOpen);

    // The caller hangs up: the request leaves the registry.
    stuckInSlot.destroy();
    await until(() => inFlight.count === stillOpen - 1, 'the request that ended gone from the registry', 5_000);
  });
});
