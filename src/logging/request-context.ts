import { AsyncLocalStorage } from 'node:async_hooks';
import { Injectable } from '@nestjs/common';
import { ZimCallEvents, type ZimAttemptEvent, type ZimSlotEvent } from '../zego/zim-call-events.js';

/** What one request did on the way to the vendor, for its request log line. */
export interface RequestLogContext {
  /** Vendor attempts made for this request. */
  vendorAttempts: number;
  /** The last attempt's outcome ('success', 'timeout', a vendor-code outcome…). */
  vendorOutcome?: string;
  /** The vendor's Code and RequestId from the last attempt that carried them. */
  zegoCode?: number;
  zegoRequestId?: string;
  /** Waits for an outbound slot: how many, their total, and how the last one ended. */
  limiterWaits: number;
  limiterWaitMs: number;
  limiterOutcome?: ZimSlotEvent['outcome'];
}

/** Opened by RequestLogMiddleware around the rest of each request. */
export const requestContext = new AsyncLocalStorage<RequestLogContext>();

export function newRequestLogContext(): RequestLogContext {
  return { vendorAttempts: 0, limiterWaits: 0, limiterWaitMs: 0 };
}

/** Adds a vendor attempt to the request it was made for (if it was made for one). */
export function recordAttempt(event: ZimAttemptEvent, context = requestContext.getStore()): void {
  if (!context) return;
  context.vendorAttempts += 1;
  context.vendorOutcome = event.outcome;
  // Every attempt is a new vendor exchange: an earlier attempt's code must not outlive it.
  context.zegoCode = event.zegoCode;
  context.zegoRequestId = event.zegoRequestId;
}

/** Adds a wait for an outbound slot to the request it was made for. */
export function recordSlot(event: ZimSlotEvent, context = requestContext.getStore()): void {
  if (!context) return;
  context.limiterWaits += 1;
  context.limiterWaitMs += event.waitedMs;
  context.limiterOutcome = event.outcome;
}

/** Subscribes the request context to the vendor-call events, once per application. */
@Injectable()
export class RequestContextRecorder {
  constructor(events: ZimCallEvents) {
    events.onAttempt((event) => recordAttempt(event));
    events.onSlot((event) => recordSlot(event));
  }
}
