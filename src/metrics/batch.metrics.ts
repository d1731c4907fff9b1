import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { EvictionPolicyWatch } from '../redis/eviction-policy-watch.js';
import type { BatchEvents } from '../rooms/batches/batch-events.js';
import type { BatchQueue } from '../rooms/batches/batch-queue.js';

/**
 * Batches in /metrics: rooms accepted, sent, and ended per client; batch durations; rooms waiting
 * in the queue per client (read at each scrape); and whether Redis may evict queued rooms.
 */
export function registerBatchMetrics(registry: Registry, events: BatchEvents, queue: BatchQueue, eviction?: EvictionPolicyWatch): void {
  const registers = [registry];
  const accepted = new Counter({
    name: 'zim_gateway_batch_rooms_accepted_total',
    help: 'Rooms accepted in batches (POST /rooms/batches answered 202), by client',
    labelNames: ['client'],
    registers,
  });
  const rooms = new Counter({
    name: 'zim_gateway_batch_rooms_total',
    help: 'Batch rooms by what happened: sent (each vendor attempt), created, failed, cancelled; by client',
    labelNames: ['client', 'event'],
    registers,
  });
  const durations = new Histogram({
    name: 'zim_gateway_batch_duration_seconds',
    help: 'From a batch\'s submission to its end, by how it ended (done, cancelled)',
    labelNames: ['status'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
    registers,
  });
  new Gauge({
    name: 'zim_gateway_batch_rooms_waiting',
    help: 'Batch rooms not yet ended that the queue holds (waiting, delayed or being worked), by client; the fleet\'s when the queue is in Redis',
    labelNames: ['client'],
    registers,
    async collect() {
      this.reset();
      try {
        for (const [client, depth] of await queue.depth()) this.set({ client }, depth);
      } catch {
        // Redis away: no reading rather than a wrong one.
      }
    },
  });
  new Gauge({
    name: 'zim_gateway_redis_eviction_unsafe',
    help: 'Whether Redis may evict queued batch rooms: 1 when maxmemory-policy is not noeviction, 0 when it is, absent when unknown',
    labelNames: ['policy'],
    registers,
    collect() {
      this.reset();
      const state = eviction?.state;
      if (state && state.kind !== 'unknown') this.set({ policy: state.policy }, state.kind === 'unsafe' ? 1 : 0);
    },
  });
  events.onAccepted(({ client, rooms: count }) => accepted.inc({ client }, count));
  events.onRoom(({ client, kind }) => rooms.inc({ client, event: kind }));
  events.onEnded(({ status, durationMs }) => durations.observe({ status }, durationMs / 1000));
}
