import { Injectable } from '@nestjs/common';
import type { Priority } from '../rate-limit/rate-limit.settings.js';
import type { ZimCallError } from './zim-call-error.js';

/** One attempt at a vendor call, as it ended. */
export interface ZimAttemptEvent {
  action: string;
  /** 'success', or why the attempt failed (the vendor-code outcome, 'timeout', 'unreachable'). */
  outcome: 'success' | ZimCallError['outcome'];
  /** The vendor's `Code`, when it answered with one. */
  zegoCode?: number;
  zegoRequestId?: string;
  durationMs: number;
  /** 1 for the first attempt. */
  attempt: number;
  /** True when another attempt follows this one. */
  willRetry: boolean;
}

/** How one wait for an outbound slot ended. */
export interface ZimSlotEvent {
  action: string;
  outcome: 'granted' | 'refused' | 'aborted' | 'unavailable';
  waitedMs: number;
  /** Whose share it waited for (absent for a call without a client). */
  client?: string;
  priority: Priority;
}

/** One measurement of the way to the vendor, as the connection pool takes it. */
export type ZimTransportEvent =
  /** A vendor connection was set up (TCP, and TLS for https): ahead of need, or on a call's path. */
  | { kind: 'connected'; ms: number; when: 'ahead' | 'on-path' }
  /** A call's request was on the wire this long after its slot. */
  | { kind: 'wired'; ms: number }
  /** The vendor's answer began this long after the request was on the wire. */
  | { kind: 'answered'; ms: number }
  /** A request written on a connection the vendor had just closed, sent again on the same slot. */
  | { kind: 'resent'; ms: number };

type Listener<T> = (event: T) => void;

/**
 * What happens on the way to the vendor, for whoever watches (metrics, request logs). ZimClient
 * reports; it does not know who listens. A listener that throws cannot break a call.
 */
@Injectable()
export class ZimCallEvents {
  private readonly attemptListeners = new Set<Listener<ZimAttemptEvent>>();
  private readonly slotListeners = new Set<Listener<ZimSlotEvent>>();
  private readonly transportListeners = new Set<Listener<ZimTransportEvent>>();

  onAttempt(listener: Listener<ZimAttemptEvent>): void {
    this.attemptListeners.add(listener);
  }

  onSlot(listener: Listener<ZimSlotEvent>): void {
    this.slotListeners.add(listener);
  }

  onTransport(listener: Listener<ZimTransportEvent>): void {
    this.transportListeners.add(listener);
  }

  transport(event: ZimTransportEvent): void {
    notify(this.transportListeners, event);
  }

  attempt(event: ZimAttemptEvent): void {
    notify(this.attemptListeners, event);
  }

  slot(event: ZimSlotEvent): void {
    notify(this.slotListeners, event);
  }
}

function notify<T>(listeners: ReadonlySet<Listener<T>>, event: T): void {
  for (const listener of listeners) {
    try {
      listener(event);
    } catch {
      // Observers must never change the outcome of a vendor call.
    }
  }
}
