import { Counter, type Registry } from 'prom-client';
import { REQUEST_STAGES } from '../http/request-stage.js';
import type { OverdueRequestWatch } from '../lifecycle/overdue-request-watch.js';

/** Requests found open past their deadline plus a second, by what they were waiting on. */
export function registerOverdueRequestMetrics(registry: Registry, watch: OverdueRequestWatch): void {
  const overdue = new Counter({
    name: 'zim_gateway_overdue_requests_total',
    help:
      'Requests still open one second after their deadline (ZEGO_CALL_DEADLINE_MS from arrival), each counted once, ' +
      'by what they were waiting on then; anything above 0 is a bug to look for in the log',
    labelNames: ['waiting_on'],
    registers: [registry],
  });
  // Every series from the start, so an alert on an increase sees the first one.
  for (const stage of REQUEST_STAGES) overdue.inc({ waiting_on: stage }, 0);
  watch.onOverdue(({ waitingOn }) => overdue.inc({ waiting_on: waitingOn }));
}
