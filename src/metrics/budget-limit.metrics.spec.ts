import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { registerBudgetLimitMetrics } from './budget-limit.metrics.js';

async function budget(settings: { qpsLimit: number; windowMs: number }): Promise<number> {
  const registry = new Registry();
  registerBudgetLimitMetrics(registry, settings);
  const line = /^zim_gateway_outbound_budget_calls_per_second (\S+)$/m.exec(await registry.metrics());
  return Number(line?.[1]);
}

describe('registerBudgetLimitMetrics', () => {
  it('shows the vendor budget in calls per second, whatever the window', async () => {
    expect(await budget({ qpsLimit: 20, windowMs: 1000 })).toBe(20);
    expect(await budget({ qpsLimit: 100, windowMs: 10_000 })).toBe(10);
    expect(await budget({ qpsLimit: 3, windowMs: 250 })).toBe(12);
  });
});
