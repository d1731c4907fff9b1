import { AsyncLocalStorage } from 'node:async_hooks';
import type { SlotReadiness, WireReport } from '../../rate-limit/outbound-rate-limiter.js';

/** What the hand-off needs of the pool's connections. */
export interface SlotConnections {
  /** False: a call never waits for a warm connection (ZEGO_WARM_CONNECTIONS=false). */
  readonly warm: boolean;
  /** Connections a call can leave on now. */
  idle(): number;
  /** Opens what the calls due need. */
  ensure(): void;
  /** How far ahead of a slot its connection is opened. */
  leadMs(): number;
  /** A call asked for a connection at its slot. */
  asked(): void;
  /** The last attempt to connect failed, recently, and none succeeded since. */
  unreachable(): boolean;
  now(): number;
}

/**
 * Between the limiter's slots and the warm connections. Each call's departure is told its slot, so
 * connections are opened ahead for it; at the slot it claims an idle connection, or says it is not
 * ready and the limiter trades its slot for a later one, rather than connecting on the slot's path.
 * Its request then takes the connection claimed for it (`send`).
 */
export class SlotHandOff {
  private readonly departures = new Set<Departure>();
  /** The departure whose request is being sent: the agent learns it from here. */
  private readonly sending = new AsyncLocalStorage<Departure>();
  private claims = 0;

  constructor(private readonly connections: SlotConnections) {}

  departure(): Departure {
    return new Departure(this);
  }

  /** The departure sending now (inside its `send`), if any. */
  current(): Departure | undefined {
    return this.sending.getStore();
  }

  /** Idle connections claimed at their slots and not yet taken by the agent. */
  claimed(): number {
    return this.claims;
  }

  /** Calls waiting for a slot at or before `time`. */
  dueBy(time: number): number {
    let due = 0;
    for (const departure of this.departures) {
      if (departure.waitingForSlot && departure.slotAt !== undefined && departure.slotAt <= time) due++;
    }
    return due;
  }

  /** @internal Connections for the slot now, and a check again one lead before it. */
  expected(departure: Departure, slotAt: number): void {
    this.departures.add(departure);
    this.connections.ensure();
    const checkIn = slotAt - this.connections.leadMs() - this.connections.now();
    if (checkIn > 0) departure.arm(setTimeout(() => this.connections.ensure(), checkIn));
  }

  /** @internal */
  claim(): boolean {
    this.connections.asked();
    if (!this.connections.warm) return true;
    if (this.connections.idle() - this.claims > 0) {
      this.claims++;
      return true;
    }
    this.connections.ensure();
    // The vendor cannot be reached: a call fails to connect, sending nothing, and says so at once
    // rather than waiting out its slots for a connection that will not come.
    return this.connections.unreachable();
  }

  /** @internal The call that claimed a connection went out without it (or gave up). */
  unclaim(): void {
    this.claims = Math.max(0, this.claims - 1);
  }

  /** @internal */
  forget(departure: Departure): void {
    this.departures.delete(departure);
  }

  /** @internal */
  run<T>(departure: Departure, send: () => Promise<T>): Promise<T> {
    return this.sending.run(departure, send);
  }
}

/** A call's slot and its connection, from grant to hand-over to the agent. */
export class Departure implements SlotReadiness {
  /** The slot, on this replica's monotonic clock. */
  slotAt?: number;
  waitingForSlot = false;
  private claimed = false;
  private timer?: NodeJS.Timeout;
  private wireReport?: WireReport;

  constructor(private readonly handOff: SlotHandOff) {}

  expect(slotAt: number): void {
    this.slotAt = slotAt;
    this.waitingForSlot = true;
    this.disarm();
    this.handOff.expected(this, slotAt);
  }

  ready(): boolean {
    if (this.claimed) return true;
    this.claimed = this.handOff.claim();
    return this.claimed;
  }

  taken(wired: WireReport): void {
    this.wireReport = wired;
  }

  /** @internal Its request was handed to the network at `at` (the slot's limiter learns it). */
  wired(at: number): void {
    this.wireReport?.(at);
  }

  /** Sends through the pool: the request it makes is this departure's (timings, the connection it claimed). */
  send<T>(request: () => Promise<T>): Promise<T> {
    return this.handOff.run(this, request);
  }

  /** The call is over (sent, refused or given up): nothing more is expected of the pool for it. */
  done(): void {
    this.disarm();
    this.waitingForSlot = false;
    if (this.claimed) this.handOff.unclaim();
    this.claimed = false;
    this.handOff.forget(this);
  }

  /** @internal */
  arm(timer: NodeJS.Timeout): void {
    timer.unref();
    this.timer = timer;
  }

  /** @internal Its request reached the agent, which now takes the connection claimed for it. */
  handedOver(): void {
    this.waitingForSlot = false;
    this.disarm();
    if (this.claimed) this.handOff.unclaim();
    this.claimed = false;
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
