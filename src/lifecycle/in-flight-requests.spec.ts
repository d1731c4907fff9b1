import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from '@jest/globals';
import type { Request, Response } from 'express';
import { currentRequestProgress, RequestProgress } from '../http/request-progress.js';
import { InFlightRequests, InFlightRequestsMiddleware } from './in-flight-requests.js';

const DEADLINE_MS = 10_000;

function arrive(inFlight: InFlightRequests) {
  const middleware = new InFlightRequestsMiddleware({ zego: { callDeadlineMs: DEADLINE_MS } }, inFlight);
  const request = { method: 'POST' } as Request;
  const response = new EventEmitter();
  let progressInNext: RequestProgress | undefined;
  const before = performance.now();
  middleware.use(request, response as unknown as Response, () => {
    progressInNext = currentRequestProgress();
  });
  return { request, response, progress: progressInNext, before, after: performance.now() };
}

describe('InFlightRequestsMiddleware', () => {
  it('starts the deadline at the arrival, and carries it to what serves the request', () => {
    const inFlight = new InFlightRequests();
    const { progress, before, after } = arrive(inFlight);
    expect(progress).toBeInstanceOf(RequestProgress);
    expect(progress!.arrivedAt).toBeGreaterThanOrEqual(before);
    expect(progress!.arrivedAt).toBeLessThanOrEqual(after);
    expect(progress!.deadline).toBe(progress!.arrivedAt + DEADLINE_MS);
    // Only the request's own handling sees it.
    expect(currentRequestProgress()).toBeUndefined();
  });
});

describe('InFlightRequests', () => {
  it('holds each request until its response closes, oldest first', () => {
    const inFlight = new InFlightRequests();
    const first = arrive(inFlight);
    const second = arrive(inFlight);
    expect(inFlight.count).toBe(2);
    expect([...inFlight.requests()].map((open) => open.request)).toEqual([first.request, second.request]);
    expect([...inFlight.requests()][0]!.progress).toBe(first.progress);

    first.response.emit('close');
    expect(inFlight.count).toBe(1);
    expect([...inFlight.requests()].map((open) => open.request)).toEqual([second.request]);
    second.response.emit('close');
    expect(inFlight.count).toBe(0);
  });

  it('tells shutdown when the last one is gone, or that the time ran out', async () => {
    const inFlight = new InFlightRequests();
    await expect(inFlight.drained(1)).resolves.toBe(true);
    const open = arrive(inFlight);
    await expect(inFlight.drained(1)).resolves.toBe(false);
    const drained = inFlight.drained(5_000);
    open.response.emit('close');
    await expect(drained).resolves.toBe(true);
  });
});
