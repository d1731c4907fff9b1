import { Gauge, type Registry } from 'prom-client';
import type { SharedStoreMode } from '../redis/redis-down-policy.js';

/** What readiness is decided by, as the probe reads it (see ReadinessIndicators). */
export interface ReadinessState {
  readonly shutdown: { readonly shuttingDown: boolean };
  readonly limiter: { readonly mode: SharedStoreMode };
}

/**
 * Readiness on /metrics, so an alert can count the ready replicas without reaching the kubelet's
 * probes: 0 while shutting down, or while the budget is in reject mode (every vendor call would
 * answer 503), as GET /health/ready answers 503 then. Read from state at each scrape: the probe's
 * own Redis round trip would make every scrape wait on Redis.
 */
export function registerReadinessMetrics(registry: Registry, state: ReadinessState): void {
  new Gauge({
    name: 'zim_gateway_ready',
    help:
      'Whether this replica is ready to create rooms (1) or not (0): GET /health/ready answers 503 while shutting down, ' +
      'or while Redis is unreachable with RATE_LIMIT_ON_REDIS_DOWN=reject (degraded, still ready, on its own share)',
    registers: [registry],
    collect() {
      this.set(state.shutdown.shuttingDown || state.limiter.mode === 'reject' ? 0 : 1);
    },
  });
}
