/**
 * How late calls reached the network after their slot, from the replicas' own histogram
 * (`zim_gateway_vendor_slot_to_wire_seconds`), over one run: what the safety margin must absorb on
 * the gateways' side. Read before and after the load, so warm-up calls are left out.
 */
import { metricSum, scrapeMetrics, type MetricSample } from '../test/support/prometheus-text.js';

const NAME = 'zim_gateway_vendor_slot_to_wire_seconds';
/** The histogram's bounds, in seconds, at and above a tenth of a millisecond. */
const BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface WireLateness {
  calls: number;
  /** Calls on the wire later than each bound after their slot (ms → count). */
  over: ReadonlyMap<number, number>;
  /** The bound at or under which 99% of the calls were wired (ms); Infinity past the last bound. */
  p99AtMostMs: number;
}

/** Every replica's samples now. */
export function scrapeAll(urls: readonly string[]): Promise<MetricSample[][]> {
  return Promise.all(urls.map((url) => scrapeMetrics(url)));
}

export function wireLateness(before: readonly MetricSample[][], after: readonly MetricSample[][]): WireLateness {
  const sum = (samples: readonly MetricSample[][], name: string, labels: Record<string, string> = {}): number =>
    samples.reduce((total, replica) => total + metricSum(replica, name, labels), 0);
  const calls = sum(after, `${NAME}_count`) - sum(before, `${NAME}_count`);
  const within = (bound: number): number =>
    sum(after, `${NAME}_bucket`, { le: String(bound) }) - sum(before, `${NAME}_bucket`, { le: String(bound) });
  const over = new Map(BOUNDS.map((bound) => [bound * 1000, calls - within(bound)]));
  const p99 = BOUNDS.find((bound) => within(bound) >= 0.99 * calls);
  return { calls, over, p99AtMostMs: p99 === undefined ? Infinity : p99 * 1000 };
}

/** `812 calls; over 15 ms: 0, over 25 ms: 0, over 50 ms: 0; p99 <= 1 ms`. */
export function formatWireLateness(lateness: WireLateness, marginMs: number): string {
  if (lateness.calls === 0) return 'no call was placed in a slot (a limiter without slots)';
  const shown = [marginMs / 2, 25, 50].map((ms) => `over ${ms} ms: ${lateness.over.get(ms) ?? '?'}`).join(', ');
  return `${lateness.calls} calls; ${shown}; p99 <= ${lateness.p99AtMostMs} ms`;
}
