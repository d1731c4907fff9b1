import { EventEmitter } from 'node:events';
import { describe, expect, it } from '@jest/globals';
import type { RedisClient } from '../redis/redis-connection.js';
import { Registry } from 'prom-client';
import { LocalOutboundRateLimiter } from '../rate-limit/local-outbound-rate-limiter.js';
import { OutboundRateLimiter } from '../rate-limit/outbound-rate-limiter.js';
import { RedisDownPolicy } from '../redis/redis-down-policy.js';
import { registerOutboundLimiterMetrics, registerSharedStoreMetrics } from './outbound-limiter.metrics.js';

/** A limiter whose late-slot and late-wire counts the test sets. */
class LateCounting extends OutboundRateLimiter {
  readonly mode = 'shared';
  private late = 0;
  wires = 0;

  acquire(): Promise<void> {
    return Promise.resolve();
  }

  override lateSlots(): number {
    return this.late;
  }

  override lateWires(): number {
    return this.wires;
  }

  setLate(count: number): void {
    this.late = count;
  }
}

async function scrape(registry: Registry): Promise<string> {
  return registry.metrics();
}

describe('registerOutboundLimiterMetrics', () => {
  it('reports the late slots the limiter counted, growing as it counts more', async () => {
    const registry = new Registry();
    const limiter = new LateCounting();
    registerOutboundLimiterMetrics(registry, limiter);

    expect(await scrape(registry)).toMatch(/^zim_gateway_outbound_late_slots_total 0$/m);
    limiter.setLate(3);
    expect(await scrape(registry)).toMatch(/^zim_gateway_outbound_late_slots_total 3$/m);
    // Scraping again without new late slots does not count them twice.
    expect(await scrape(registry)).toMatch(/^zim_gateway_outbound_late_slots_total 3$/m);
    limiter.setLate(5);
    expect(await scrape(registry)).toMatch(/^zim_gateway_outbound_late_slots_total 5$/m);
  });

  it('reports the calls that reached the wire late, apart from the late slots', async () => {
    const registry = new Registry();
    const limiter = new LateCounting();
    registerOutboundLimiterMetrics(registry, limiter);

    expect(await scrape(registry)).toMatch(/^zim_gateway_outbound_late_wires_total 0$/m);
    limiter.wires = 2;
    expect(await scrape(registry)).toMatch(/^zim_gateway_outbound_late_wires_total 2$/m);
    expect(await scrape(registry)).toMatch(/^zim_gateway_outbound_late_wires_total 2$/m);
    expect(await scrape(registry)).toMatch(/^zim_gateway_outbound_late_slots_total 0$/m);
  });

  it('shows an in-process limiter as mode local', async () => {
    const registry = new Registry();
    registerOutboundLimiterMetrics(registry, new LocalOutboundRateLimiter({ limit: 1, windowMs: 1000, safetyMarginMs: 0 }));
    const text = await scrape(registry);
    expect(text).toMatch(/^zim_gateway_outbound_limiter_mode\{mode="local"\} 1$/m);
    expect(text).toMatch(/^zim_gateway_outbound_limiter_mode\{mode="shared"\} 0$/m);
    expect(text).toMatch(/^zim_gateway_outbound_limiter_mode\{mode="reject"\} 0$/m);
  });
});

describe('registerSharedStoreMetrics', () => {
  it('counts each change of the Redis-down policy by the mode entered, from zero', async () => {
    const connection = Object.assign(new EventEmitter(), { status: 'connecting' });
    const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };
    const policy = new RedisDownPolicy(connection as unknown as RedisClient, { fallback: 'local', assumedReplicas: 3, slowRoundTripMs: 75 }, silent);
    const registry = new Registry();
    registerSharedStoreMetrics(registry, policy);
    expect(await scrape(registry)).toMatch(/^zim_gateway_shared_store_mode_changes_total\{mode="local"\} 0$/m);

    connection.status = 'ready';
    connection.emit('ready');
    connection.status = 'reconnecting';
    connection.emit('close');
    await new Promise((resolve) => setImmediate(resolve));
    connection.status = 'ready';
    connection.emit('ready');

    const text = await scrape(registry);
    expect(text).toMatch(/^zim_gateway_shared_store_mode_changes_total\{mode="shared"\} 2$/m);
    expect(text).toMatch(/^zim_gateway_shared_store_mode_changes_total\{mode="local"\} 1$/m);
    expect(text).toMatch(/^zim_gateway_shared_store_mode_changes_total\{mode="reject"\} 0$/m);
  });
});
