import { Gauge, type Registry } from 'prom-client';

/** The settings the vendor's budget is made of (OutboundSettings). */
export interface BudgetLimitSettings {
  readonly qpsLimit: number;
  readonly windowMs: number;
}

/**
 * The fleet's vendor budget on /metrics, so the dashboard and the saturation alert read the slots
 * granted against the configured limit rather than a number copied into every query.
 */
export function registerBudgetLimitMetrics(registry: Registry, settings: BudgetLimitSettings): void {
  const perSecond = (settings.qpsLimit * 1000) / settings.windowMs;
  new Gauge({
    name: 'zim_gateway_outbound_budget_calls_per_second',
    help:
      "The fleet's vendor budget, ZEGO_QPS_LIMIT calls per ZEGO_QPS_WINDOW_MS, in calls per second (every replica " +
      'shows the whole fleet\'s); the scheduler spaces calls over the window plus RATE_LIMIT_SAFETY_MARGIN_MS, a little below it',
    registers: [registry],
    collect() {
      this.set(perSecond);
    },
  });
}
