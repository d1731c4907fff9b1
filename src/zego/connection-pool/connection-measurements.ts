import type { Logger } from '@nestjs/common';
import { RecentDurations } from './recent-durations.js';
import { learnedHiddenSetupMs } from './sizing-policy.js';

/** What the pool measures, as it happens. */
export interface VendorConnectionObserver {
  /** A connection was set up (TCP, and TLS for https): `ahead` of need, or `on-path` of a call. */
  connected?(setupMs: number, when: 'ahead' | 'on-path'): void;
  /** A call's request was on the wire (handed to the kernel) this long after its slot. */
  wired?(slotToWireMs: number): void;
  /** The vendor's first byte of an answer came this long after the request was on the wire. */
  answered?(answerMs: number): void;
}

export interface ConnectionMeasurementsOptions {
  /** How late a call may reach the vendor's door (RATE_LIMIT_SAFETY_MARGIN_MS): a p99 past half of it is warned of. */
  safetyMarginMs: number;
  /** The hidden set-up assumed until a first exchange shows more. */
  hiddenSetupMs: number;
  observer?: VendorConnectionObserver;
  logger: Logger;
  now: () => number;
}

/** A failed attempt to connect counts as "the vendor is unreachable" for this long. */
const UNREACHABLE_MEMORY_MS = 1000;
/** One warning per kind per this long. */
const WARNING_INTERVAL_MS = 10 * 60_000;

/**
 * What the pool knows of its way to the vendor, from what connections and calls did lately: set-up
 * and answer times, the hidden set-up learned from first exchanges, the rate of calls, and whether
 * the vendor can be reached. Each measurement goes on to the observer (metrics); a warning is
 * logged when our side's own lateness nears the safety margin.
 */
export class ConnectionMeasurements {
  private readonly setups = new RecentDurations();
  private readonly answers = new RecentDurations();
  /** Answers on kept-alive connections: what a fresh connection's first answer is compared with. */
  private readonly reusedAnswers = new RecentDurations();
  private readonly slotToWire = new RecentDurations();
  /** When calls left, the last second of them: the rate this replica is being given. */
  private readonly recentCalls: number[] = [];
  private hiddenSetup: number;
  /** When a call last left, or last asked for a connection. */
  private lastDemandAt = Number.NEGATIVE_INFINITY;
  private lastFailureAt = Number.NEGATIVE_INFINITY;
  private lastConnectedAt = Number.NEGATIVE_INFINITY;
  private readonly warnedAt = new Map<string, number>();

  constructor(private readonly options: ConnectionMeasurementsOptions) {
    this.hiddenSetup = options.hiddenSetupMs;
  }

  /** How long a new connection may hold its first bytes after it is up (learned upwards from first exchanges). */
  get hiddenSetupMs(): number {
    return this.hiddenSetup;
  }

  /** A connection's set-up (p99); undefined before the first. */
  get setupP99Ms(): number | undefined {
    return this.setups.quantile(0.99);
  }

  /** The vendor's answer (p99); undefined before the first. */
  get answerP99Ms(): number | undefined {
    return this.answers.quantile(0.99);
  }

  connected(setupMs: number, when: 'ahead' | 'on-path'): void {
    this.lastConnectedAt = this.options.now();
    this.setups.add(setupMs);
    this.options.observer?.connected?.(setupMs, when);
    // Opened ahead, a slow set-up costs nothing; one a call waited for made that call late.
    if (when === 'on-path') this.warnNearMargin('set-up', this.setups.quantile(0.99) ?? 0, 'to set up a vendor connection on their path');
  }

  failed(error: unknown): void {
    this.lastFailureAt = this.options.now();
    this.options.logger.debug(`Opening a vendor connection ahead failed: ${error instanceof Error ? error.message : String(error)}`);
  }

  msSinceFailure(): number {
    return this.options.now() - this.lastFailureAt;
  }

  /** The last attempt to connect failed, recently, and none succeeded since. */
  unreachable(): boolean {
    return this.lastFailureAt > this.lastConnectedAt && this.msSinceFailure() < UNREACHABLE_MEMORY_MS;
  }

  /** A call asked for a connection at its slot. */
  asked(): void {
    this.lastDemandAt = this.options.now();
  }

  /** A call's request was given to the agent. */
  callLeft(): void {
    const now = this.options.now();
    this.lastDemandAt = now;
    this.recentCalls.push(now);
    this.forgetCallsBefore(now - 1000);
  }

  /** The demand at `now`: the calls of the last second, and how long since a call last left or asked. */
  demandAt(now: number): { callsLastSecond: number; msSinceDemand: number } {
    this.forgetCallsBefore(now - 1000);
    return { callsLastSecond: this.recentCalls.length, msSinceDemand: now - this.lastDemandAt };
  }

  /** A call's request was on the wire `lateMs` after its slot. */
  wired(lateMs: number): void {
    this.slotToWire.add(lateMs);
    this.options.observer?.wired?.(lateMs);
    this.warnNearMargin('slot-to-wire', this.slotToWire.quantile(0.99) ?? 0, 'from a slot to the wire');
  }

  /**
   * The vendor's answer began `answerMs` after its request was on the wire: on a kept-alive
   * connection, or (`freshAgeMs` given) the first on a connection up that long before.
   */
  answered(answerMs: number, freshAgeMs: number | undefined): void {
    this.answers.add(answerMs);
    this.options.observer?.answered?.(answerMs);
    if (freshAgeMs === undefined) {
      this.reusedAnswers.add(answerMs);
      return;
    }
    this.hiddenSetup = learnedHiddenSetupMs(
      this.hiddenSetup,
      { ageMs: freshAgeMs, answerMs },
      { count: this.reusedAnswers.count, p50Ms: this.reusedAnswers.quantile(0.5) ?? 0, p99Ms: this.reusedAnswers.quantile(0.99) ?? 0 },
    );
  }

  private forgetCallsBefore(time: number): void {
    while (this.recentCalls.length > 0 && this.recentCalls[0] < time) this.recentCalls.shift();
  }

  private warnNearMargin(kind: string, p99: number, what: string): void {
    const margin = this.options.safetyMarginMs;
    if (p99 < margin / 2) return;
    const now = this.options.now();
    if (now - (this.warnedAt.get(kind) ?? Number.NEGATIVE_INFINITY) < WARNING_INTERVAL_MS) return;
    this.warnedAt.set(kind, now);
    this.options.logger.warn(
      `Vendor calls take ${p99.toFixed(1)} ms (p99) ${what}, more than half of RATE_LIMIT_SAFETY_MARGIN_MS ` +
        `(${margin} ms): calls may reach the vendor late enough to crowd the next window; raise ` +
        'RATE_LIMIT_SAFETY_MARGIN_MS, or find what delays them',
    );
  }
}
