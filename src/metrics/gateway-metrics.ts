import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { Counter, Histogram, Registry } from 'prom-client';
import { APP_CONFIG } from '../config/config.module.js';
import { GracefulShutdown } from '../lifecycle/graceful-shutdown.js';
import { OverdueRequestWatch } from '../lifecycle/overdue-request-watch.js';
import { ClientQuotaEvents } from '../rate-limit/client-quota-events.js';
import { OutboundRateLimiter } from '../rate-limit/outbound-rate-limiter.js';
import { RedisDownPolicy } from '../redis/redis-down-policy.js';
import { VendorConnectionPool } from '../zego/connection-pool/vendor-connection-pool.js';
import { ZimCallEvents, type ZimAttemptEvent, type ZimSlotEvent } from '../zego/zim-call-events.js';
import { registerBudgetLimitMetrics, type BudgetLimitSettings } from './budget-limit.metrics.js';
import { registerClientQuotaMetrics } from './client-quota.metrics.js';
import { registerOutboundLimiterMetrics, registerSharedStoreMetrics } from './outbound-limiter.metrics.js';
import { registerOverdueRequestMetrics } from './overdue-requests.metrics.js';
import { registerReadinessMetrics } from './readiness.metrics.js';
import { registerVendorConnectionMetrics } from './vendor-connection.metrics.js';

/** Labels hold routes, statuses, client ids, outcomes and vendor codes: never a key or a secret. */
@Injectable()
export class GatewayMetrics implements OnModuleInit {
  readonly httpRequests: Counter<'method' | 'route' | 'status' | 'client'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  private readonly vendorCalls: Counter<'action' | 'outcome' | 'code'>;
  private readonly vendorDuration: Histogram<'action' | 'outcome'>;
  private readonly vendorRetries: Counter<'action' | 'outcome'>;
  private readonly limiterWait: Histogram<'outcome' | 'client' | 'priority'>;
  private readonly slotsGranted: Counter<'client' | 'priority'>;
  private readonly limiterRefusals: Counter<'reason'>;

  constructor(
    registry: Registry,
    private readonly events: ZimCallEvents,
    limiter: OutboundRateLimiter,
    policy: RedisDownPolicy,
    pool: VendorConnectionPool,
    overdue: OverdueRequestWatch,
    quotaEvents: ClientQuotaEvents,
    shutdown: GracefulShutdown,
    @Inject(APP_CONFIG) config: { readonly outbound: BudgetLimitSettings },
  ) {
    registerClientQuotaMetrics(registry, quotaEvents);
    registerOutboundLimiterMetrics(registry, limiter);
    registerVendorConnectionMetrics(registry, pool, events, limiter);
    registerSharedStoreMetrics(registry, policy);
    registerOverdueRequestMetrics(registry, overdue);
    registerReadinessMetrics(registry, { shutdown, limiter });
    registerBudgetLimitMetrics(registry, config.outbound);
    const registers = [registry];
    this.httpRequests = new Counter({
      name: 'zim_gateway_http_requests_total',
      help: 'HTTP requests answered, by route, status and authenticated client id',
      labelNames: ['method', 'route', 'status', 'client'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'zim_gateway_http_request_duration_seconds',
      help: 'Time from the request to the end of its answer',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10],
      registers,
    });
    this.vendorCalls = new Counter({
      name: 'zim_gateway_vendor_calls_total',
      help: 'Calls sent to the ZIM server API (every attempt), by outcome and vendor Code ("none" without one)',
      labelNames: ['action', 'outcome', 'code'],
      registers,
    });
    this.vendorDuration = new Histogram({
      name: 'zim_gateway_vendor_call_duration_seconds',
      help: 'Time from sending a vendor call to its answer (or failure)',
      labelNames: ['action', 'outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 1, 2, 5],
      registers,
    });
    this.vendorRetries = new Counter({
      name: 'zim_gateway_vendor_retries_total',
      help: 'Vendor attempts that failed and were retried, by the outcome that caused the retry',
      labelNames: ['action', 'outcome'],
      registers,
    });
    this.limiterWait = new Histogram({
      name: 'zim_gateway_outbound_limiter_wait_seconds',
      help: 'Time spent waiting for an outbound slot, by how the wait ended, client and priority',
      labelNames: ['outcome', 'client', 'priority'],
      buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5],
      registers,
    });
    this.slotsGranted = new Counter({
      name: 'zim_gateway_outbound_slots_granted_total',
      help: 'Outbound slots granted (vendor calls about to be sent, retries included), by client and priority',
      labelNames: ['client', 'priority'],
      registers,
    });
    this.limiterRefusals = new Counter({
      name: 'zim_gateway_outbound_limiter_refusals_total',
      help: 'Vendor calls not sent for want of a slot: refused (429, budget spent) or unavailable (503, Redis down, reject mode)',
      labelNames: ['reason'],
      registers,
    });
  }

  onModuleInit(): void {
    this.events.onAttempt((event) => this.recordAttempt(event));
    this.events.onSlot((event) => this.recordSlot(event));
  }

  private recordAttempt(event: ZimAttemptEvent): void {
    const { action, outcome } = event;
    this.vendorCalls.inc({ action, outcome, code: event.zegoCode === undefined ? 'none' : String(event.zegoCode) });
    this.vendorDuration.observe({ action, outcome }, event.durationMs / 1000);
    if (event.willRetry) this.vendorRetries.inc({ action, outcome });
  }

  private recordSlot(event: ZimSlotEvent): void {
    const client = event.client ?? 'none';
    this.limiterWait.observe({ outcome: event.outcome, client, priority: event.priority }, event.waitedMs / 1000);
    if (event.outcome === 'granted') this.slotsGranted.inc({ client, priority: event.priority });
    if (event.outcome === 'refused' || event.outcome === 'unavailable') this.limiterRefusals.inc({ reason: event.outcome });
  }
}
