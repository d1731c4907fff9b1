import { Counter, Gauge, type Registry } from 'prom-client';
import type { BudgetModeChange, OutboundRateLimiter } from '../rate-limit/outbound-rate-limiter.js';
import type { RedisDownPolicy, SharedStoreMode } from '../redis/redis-down-policy.js';
import { runningTotalCounter } from './running-total-counter.js';

const MODES: readonly SharedStoreMode[] = ['shared', 'local', 'reject'];
/** Every change the budget's mode can make, counted from 0. */
const MODE_CHANGES: ReadonlyArray<readonly [SharedStoreMode, BudgetModeChange['reason']]> = [
  ['shared', 'recovered'],
  ['local', 'unreachable'],
  ['local', 'slow'],
  ['reject', 'unreachable'],
  ['reject', 'slow'],
];

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

  new Gauge({
    name: 'zim_gateway_outbound_fair_share',
    help:
      'Calls per second each client waiting for the vendor budget gets while every waiting client keeps asking ' +
      '(weighted fair share within its priority; a client asking for less is served in full)',
    labelNames: ['client', 'priority'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { client, priority, perSecond } of await limiter.fairShares()) this.set({ client, priority }, perSecond);
    },
  });

  new Gauge({
    name: 'zim_gateway_fleet_members',
    help:
      'Replicas sharing the vendor budget as Redis last counted them: active (lease current) or lapsed ' +
      '(lease ran out recently: the fleet leaves room for its own share)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const view = limiter.fleetView();
      if (!view) return;
      this.set({ state: 'active' }, view.active);
      this.set({ state: 'lapsed' }, view.lapsed);
    },
  });

  new Gauge({
    name: 'zim_gateway_redis_round_trip_seconds',
    help:
      "The typical round trip of this replica's calls to the shared scheduler in Redis (median of the recent ones); " +
      'past RATE_LIMIT_SLOW_REDIS_MS the budget is as if Redis were down',
    registers: [registry],
    collect() {
      const timing = limiter.schedulerTiming();
      if (timing) this.set(timing.roundTripMs / 1000);
    },
  });

  new Gauge({
    name: 'zim_gateway_outbound_grant_horizon_seconds',
    help: "How far ahead the shared scheduler grants slots for this replica's callers (it grows with the round trip to Redis)",
    registers: [registry],
    collect() {
      const timing = limiter.schedulerTiming();
      if (timing) this.set(timing.horizonMs / 1000);
    },
  });

  const modeChanges = new Counter({
    name: 'zim_gateway_outbound_limiter_mode_changes_total',
    help:
      "Changes of the vendor budget's mode, by the mode entered and why: unreachable (Redis failed a call or its " +
      'connection), slow (its round trip passed RATE_LIMIT_SLOW_REDIS_MS), recovered (back to shared)',
    labelNames: ['mode', 'reason'],
    registers: [registry],
  });
  for (const [mode, reason] of MODE_CHANGES) modeChanges.inc({ mode, reason }, 0);
  limiter.onModeChange(({ mode, reason }) => modeChanges.inc({ mode, reason }));

  runningTotalCounter({
    name: 'zim_gateway_fleet_lease_lapses_total',
    help: 'Times this replica lost Redis while it held a membership lease, and went on its own share once the lease lapsed',
    registers: [registry],
    read: () => limiter.leaseLapses(),
  });

  runningTotalCounter({
    name: 'zim_gateway_outbound_late_slots_total',
    help:
      'Vendor calls whose caller woke too late to go out in its slot (a stalled event loop, a slow Redis ' +
      'answer) and took a new one: a sign of CPU starvation',
    registers: [registry],
    read: () => limiter.lateSlots(),
  });

  runningTotalCounter({
    name: 'zim_gateway_outbound_late_wires_total',
    help:
      'Vendor calls whose request reached the wire more than RATE_LIMIT_SAFETY_MARGIN_MS after their slot ' +
      '(the process starved between its slot and the write), each moved in the slot log by the excess so that later slots keep clear of it',
    registers: [registry],
    read: () => limiter.lateWires(),
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
