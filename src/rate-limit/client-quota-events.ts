import { Injectable } from '@nestjs/common';

/** Who refused a request over its client's quota: the shared store, or this replica without asking it. */
export type QuotaDecider = 'shared store' | 'replica';

export interface QuotaRefusalEvent {
  client: string;
  decidedBy: QuotaDecider;
}

type Listener = (event: QuotaRefusalEvent) => void;

/**
 * Client-quota refusals, for whoever watches (metrics). The throttler storages report; they do
 * not know who listens. A listener that throws cannot change a quota decision.
 */
@Injectable()
export class ClientQuotaEvents {
  private readonly listeners = new Set<Listener>();

  onRefused(listener: Listener): void {
    this.listeners.add(listener);
  }

  refused(event: QuotaRefusalEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // Observers must never change the outcome of a request.
      }
    }
  }
}
