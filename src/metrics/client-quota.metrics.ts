import { Counter, type Registry } from 'prom-client';
import type { ClientQuotaEvents } from '../rate-limit/client-quota-events.js';

/** Client-quota refusals, apart by who decided: the shared store, or this replica on its own. */
export function registerClientQuotaMetrics(registry: Registry, events: ClientQuotaEvents): void {
  const refusals = new Counter({
    name: 'zim_gateway_client_quota_refusals_total',
    help:
      'Requests refused over their client quota, by client and by who decided: "shared_store" (a Redis call), or ' +
      '"replica" (this replica alone: the shared store had said the client is over quota until a known time, or ' +
      'the quota is counted in process without Redis or while it is down)',
    labelNames: ['client', 'decided_by'],
    registers: [registry],
  });
  events.onRefused(({ client, decidedBy }) =>
    refusals.inc({ client, decided_by: decidedBy === 'shared store' ? 'shared_store' : 'replica' }),
  );
}
