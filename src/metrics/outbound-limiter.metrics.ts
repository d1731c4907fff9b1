import { Counter, Gauge, type Registry } from 'prom-client';
import type { OutboundRateLimiter } from '../rate-limit/outbound-rate-limiter.js';
import type { RedisDownPolicy, SharedStoreMode } from '../redis/redis-down-policy.js';

const MODES: readonly SharedStoreMode[] = ['shared', 'local', 'reject'];

/** The limiter's own state on /metrics, read at each scrape. */
export function registerOutboundLimiterMetrics(registry: Registry, limiter: OutboundRateLimiter): void {
  new Gauge({
    name: 'zim_gateway_outbound_limiter_mode',
    help: 'The mode of the outbound limiter (1 for the current one): shared through Redis, local in process, or reject',
    labelNames: ['mode'],
    registers: [registry],
    collect() {
      for (const mode of MODES) this.set({ mode }, mode === limiter.mode ? 1 : 0);
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

/** Every change of the Redis-down policy's mode, which every shared store follows. */
export function registerSharedStoreMetrics(registry: Registry, policy: RedisDownPolicy): void {
  const changes = new Counter({
    name: 'zim_gateway_shared_store_mode_changes_total',
    help:
      'Changes of the mode every shared store (outbound limiter, client quotas, idempotency) follows, ' +
      'by the mode entered: shared (Redis is back), local or reject (Redis is unreachable)',
    labelNames: ['mode'],
    registers: [registry],
  });
  for (const mode of MODES) changes.inc({ mode }, 0);
  policy.onModeChange((mode) => changes.inc({ mode }));
}
