import { Counter, Gauge, type Registry } from 'prom-client';
import { FailoverOutboundRateLimiter, type OutboundLimiterMode } from './failover-outbound-rate-limiter.js';
import type { OutboundRateLimiter } from './outbound-rate-limiter.js';

const MODES: readonly OutboundLimiterMode[] = ['shared', 'local', 'reject'];

/** The limiter's own state on /metrics, read at each scrape. */
export function registerOutboundLimiterMetrics(registry: Registry, limiter: OutboundRateLimiter): void {
  new Gauge({
    name: 'zim_gateway_outbound_limiter_mode',
    help: 'The mode of the outbound limiter (1 for the current one): shared through Redis, local in process, or reject',
    labelNames: ['mode'],
    registers: [registry],
    collect() {
      const current = limiter instanceof FailoverOutboundRateLimiter ? limiter.mode : 'local';
      for (const mode of MODES) this.set({ mode }, mode === current ? 1 : 0);
    },
  });

  let reported = 0;
  new Counter({
    name: 'zim_gateway_outbound_late_slots_total',
    help:
      'Vendor calls whose caller woke too late to go out in its slot (a stalled event loop, a slow Redis ' +
      'answer) and took a new one: a sign of CPU starvation',
    registers: [registry],
    collect() {
      const total = limiter.lateSlots();
      this.inc(total - reported);
      reported = total;
    },
  });
}
