import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { SharedStoreMode } from '../redis/redis-down-policy.js';
import { registerReadinessMetrics } from './readiness.metrics.js';

/** The state readiness reads, changed by the test as a replica's would change. */
function replicaState(): { shutdown: { shuttingDown: boolean }; limiter: { mode: SharedStoreMode } } {
  return { shutdown: { shuttingDown: false }, limiter: { mode: 'shared' } };
}

async function ready(registry: Registry): Promise<string | undefined> {
  return /^zim_gateway_ready (\d+)$/m.exec(await registry.metrics())?.[1];
}

describe('registerReadinessMetrics', () => {
  it('is 1 on the shared budget and on its own share (degraded, still ready)', async () => {
    const registry = new Registry();
    const state = replicaState();
    registerReadinessMetrics(registry, state);
    expect(await ready(registry)).toBe('1');
    state.limiter.mode = 'local';
    expect(await ready(registry)).toBe('1');
  });

  it('is 0 in reject mode and back to 1 when Redis is', async () => {
    const registry = new Registry();
    const state = replicaState();
    registerReadinessMetrics(registry, state);
    state.limiter.mode = 'reject';
    expect(await ready(registry)).toBe('0');
    state.limiter.mode = 'shared';
    expect(await ready(registry)).toBe('1');
  });

  it('is 0 from the first shutdown signal on', async () => {
    const registry = new Registry();
    const state = replicaState();
    registerReadinessMetrics(registry, state);
    state.shutdown.shuttingDown = true;
    expect(await ready(registry)).toBe('0');
  });
});
