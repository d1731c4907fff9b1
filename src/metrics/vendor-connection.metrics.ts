import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { OutboundRateLimiter } from '../rate-limit/outbound-rate-limiter.js';
import type { VendorConnectionPool } from '../zego/connection-pool/vendor-connection-pool.js';
import type { ZimCallEvents } from '../zego/zim-call-events.js';
import { runningTotalCounter } from './running-total-counter.js';

/** Milliseconds to a few seconds: loopback set-ups and slot-to-wire times are sub-millisecond, WAN handshakes hundreds. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The way to the vendor on /metrics: what the connection pool measures (set-up, slot to wire, the
 * vendor's answer), what it holds, and the slots traded for want of a warm connection.
 */
export function registerVendorConnectionMetrics(
  registry: Registry,
  pool: VendorConnectionPool,
  events: ZimCallEvents,
  limiter: OutboundRateLimiter,
): void {
  const registers = [registry];
  const setup = new Histogram({
    name: 'zim_gateway_vendor_connect_seconds',
    help:
      'Time to set up a vendor connection (TCP, and TLS for https), by when it was opened: ahead of need, ' +
      'or on_path of a call (that call was late by this much)',
    labelNames: ['when'],
    buckets: BUCKETS,
    registers,
  });
  const wired = new Histogram({
    name: 'zim_gateway_vendor_slot_to_wire_seconds',
    help: "Time from a call's slot to its request handed to the network: what the safety margin must absorb on our side",
    buckets: BUCKETS,
    registers,
  });
  const answered = new Histogram({
    name: 'zim_gateway_vendor_answer_seconds',
    help: "Time from a request on the wire to the first byte of the vendor's answer (the round trip and the vendor's work)",
    buckets: BUCKETS,
    registers,
  });
  const resent = new Counter({
    name: 'zim_gateway_vendor_resends_total',
    help: 'Requests written on a connection the vendor had just closed as idle (unread), sent again on the same slot',
    registers,
  });
  events.onTransport((event) => {
    if (event.kind === 'connected') setup.observe({ when: event.when === 'on-path' ? 'on_path' : 'ahead' }, event.ms / 1000);
    else if (event.kind === 'wired') wired.observe(event.ms / 1000);
    else if (event.kind === 'answered') answered.observe(event.ms / 1000);
    else resent.inc();
  });

  new Gauge({
    name: 'zim_gateway_vendor_connections',
    help: 'Vendor connections of this replica: idle (ready for the next slot), busy (carrying a call), connecting (opened ahead)',
    labelNames: ['state'],
    registers,
    collect() {
      const stats = pool.stats();
      this.set({ state: 'idle' }, stats.idle);
      this.set({ state: 'busy' }, stats.busy);
      this.set({ state: 'connecting' }, stats.connecting);
    },
  });
  new Gauge({
    name: 'zim_gateway_vendor_connection_limit',
    help: 'The most vendor connections this replica keeps: the calls it may have in flight at the whole budget, with headroom',
    registers,
    collect() {
      this.set(pool.stats().limit);
    },
  });

  runningTotalCounter({
    name: 'zim_gateway_outbound_unready_slots_total',
    help:
      'Slots traded for a later one because no warm vendor connection was idle at them: the call would have ' +
      'reached the vendor a handshake late',
    registers,
    read: () => limiter.unreadySlots(),
  });
}
