import { EventEmitter } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Logger, type LoggerService } from '@nestjs/common';
import type { Request, Response } from 'express';
import { until } from '../../test/support/async-probes.js';
import { RequestProgress } from '../http/request-progress.js';
import { InFlightRequests } from './in-flight-requests.js';
import {
  OVERDUE_AFTER_DEADLINE_MS,
  OVERDUE_CHECK_INTERVAL_MS,
  OverdueRequestWatch,
  overdueMessage,
  type OverdueRequest,
} from './overdue-request-watch.js';

const DEADLINE_MS = 10_000;
const API_KEY = 'sk-SENTINEL-overdue-unit-4f1a9c';

/** What Nest's Logger hands the application logger: the message and its parameters. */
class CapturingLogger implements LoggerService {
  readonly warnings: { message: unknown; params: unknown[] }[] = [];
  log = (): void => undefined;
  error = (): void => undefined;
  debug = (): void => undefined;
  verbose = (): void => undefined;
  fatal = (): void => undefined;
  warn = (message: unknown, ...params: unknown[]): void => {
    this.warnings.push({ message, params });
  };
}

const logs = new CapturingLogger();
beforeAll(() => Logger.overrideLogger(logs));
afterAll(() => Logger.overrideLogger(true));
afterEach(() => {
  logs.warnings.length = 0;
});

/** A routed, authenticated POST /rooms that arrived at `arrivedAt`, with what must never be logged on it. */
function openRequest(inFlight: InFlightRequests, arrivedAt: number, requestId = 'req-overdue-1') {
  const request = {
    method: 'POST',
    originalUrl: '/rooms?token=never-logged',
    url: '/rooms?token=never-logged',
    baseUrl: '',
    route: { path: '/rooms' },
    requestId,
    client: { clientId: 'team-a' },
    headers: { authorization: `Bearer ${API_KEY}` },
    body: { roomId: 'room-1', roomName: 'never-logged-name' },
  } as unknown as Request;
  const response = new EventEmitter();
  const progress = new RequestProgress(arrivedAt, DEADLINE_MS);
  inFlight.track(request, response as unknown as Response, progress);
  return { progress, close: () => response.emit('close') };
}

function setUp() {
  const inFlight = new InFlightRequests();
  const watch = new OverdueRequestWatch(inFlight);
  const reported: OverdueRequest[] = [];
  watch.onOverdue((overdue) => reported.push(overdue));
  return { inFlight, watch, reported };
}

const pastDue = DEADLINE_MS + OVERDUE_AFTER_DEADLINE_MS;

/** Timers that keep the process alive. */
const refTimers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;

describe('OverdueRequestWatch', () => {
  it('reports a request only once it is open past its deadline plus a second', () => {
    const { inFlight, watch, reported } = setUp();
    openRequest(inFlight, 0);
    watch.check(DEADLINE_MS + 1);
    watch.check(pastDue);
    expect(reported).toEqual([]);
    watch.check(pastDue + 1);
    expect(reported).toHaveLength(1);
  });

  it('reports each request once, however long it stays open', () => {
    const { inFlight, watch, reported } = setUp();
    openRequest(inFlight, 0);
    for (const now of [pastDue + 1, pastDue + 250, pastDue + 60_000]) watch.check(now);
    expect(reported).toHaveLength(1);
    expect(logs.warnings).toHaveLength(1);
  });

  it('names what the request is waiting on, by route and client, with its timings', () => {
    const { inFlight, watch, reported } = setUp();
    const { progress } = openRequest(inFlight, 500);
    progress.enter('vendor attempt 2');
    watch.check(500 + pastDue + 250);
    expect(reported).toEqual([
      {
        requestId: 'req-overdue-1',
        method: 'POST',
        route: '/rooms',
        clientId: 'team-a',
        openMs: pastDue + 250,
        deadlineMs: DEADLINE_MS,
        waitingOn: 'vendor attempt 2',
      },
    ]);
  });

  it('writes one warning with the same fields, and never the key, the headers, the query or the body', () => {
    const { inFlight, watch, reported } = setUp();
    const { progress } = openRequest(inFlight, 0);
    progress.enter('outbound slot');
    watch.check(pastDue + 250);
    expect(logs.warnings).toHaveLength(1);
    const [{ message, params }] = logs.warnings;
    expect(message).toBe(
      'POST /rooms (request req-overdue-1, client team-a) still open after 11250 ms, past its 10000 ms deadline: waiting on outbound slot',
    );
    expect(params).toEqual([reported[0], 'OverdueRequests']);
    const written = JSON.stringify(logs.warnings);
    for (const never of [API_KEY, 'authorization', 'never-logged', 'roomName', '?']) expect(written).not.toContain(never);
  });

  it('forgets a request as soon as it closes: a closed request is never reported', () => {
    const { inFlight, watch, reported } = setUp();
    const early = openRequest(inFlight, 0, 'req-closed');
    openRequest(inFlight, 0, 'req-still-open');
    early.close();
    expect(inFlight.count).toBe(1);
    watch.check(pastDue + 1);
    expect(reported.map((overdue) => overdue.requestId)).toEqual(['req-still-open']);
  });

  it('reports requests not yet routed or authenticated as such', () => {
    const { inFlight, watch, reported } = setUp();
    const request = { method: 'POST', requestId: 'req-early' } as unknown as Request;
    const progress = new RequestProgress(0, DEADLINE_MS);
    progress.enter('request body');
    inFlight.track(request, new EventEmitter() as unknown as Response, progress);
    watch.check(pastDue + 1);
    expect(reported).toEqual([expect.objectContaining({ route: 'unmatched', waitingOn: 'request body' })]);
    expect(reported[0]).not.toHaveProperty('clientId', expect.anything());
    expect(overdueMessage(reported[0]!)).toBe(
      'POST unmatched (request req-early) still open after 11001 ms, past its 10000 ms deadline: waiting on request body',
    );
  });

  it('keeps reporting to every listener when one throws', () => {
    const { inFlight, watch, reported } = setUp();
    watch.onOverdue(() => {
      throw new Error('a broken listener');
    });
    const after: OverdueRequest[] = [];
    watch.onOverdue((overdue) => after.push(overdue));
    openRequest(inFlight, 0, 'req-1');
    openRequest(inFlight, 0, 'req-2');
    watch.check(pastDue + 1);
    expect(reported).toHaveLength(2);
    expect(after).toHaveLength(2);
  });

  it('looks on its own timer from start-up, which keeps no process alive', async () => {
    const { inFlight, watch, reported } = setUp();
    // Arrived long ago on the monotonic clock: overdue at the first look.
    openRequest(inFlight, -2 * pastDue, 'req-timer');
    const timersBefore = refTimers();
    watch.onApplicationBootstrap();
    try {
      expect(refTimers()).toBe(timersBefore);
      await until(() => reported.length === 1, 'the overdue request reported by the timer', 5_000);
    } finally {
      watch.onApplicationShutdown();
    }
  });

  it('stops looking at shutdown', () => {
    jest.useFakeTimers();
    try {
      const { watch } = setUp();
      let checks = 0;
      watch.check = () => {
        checks++;
      };
      watch.onApplicationBootstrap();
      jest.advanceTimersByTime(OVERDUE_CHECK_INTERVAL_MS * 2);
      expect(checks).toBe(2);
      watch.onApplicationShutdown();
      expect(jest.getTimerCount()).toBe(0);
      jest.advanceTimersByTime(OVERDUE_CHECK_INTERVAL_MS * 10);
      expect(checks).toBe(2);
    } finally {
      jest.useRealTimers();
    }
  });
});
