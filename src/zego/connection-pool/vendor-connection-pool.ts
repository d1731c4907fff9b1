import type http from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { ConnectionMeasurements, type VendorConnectionObserver } from './connection-measurements.js';
import { ConnectionSupply } from './connection-supply.js';
import * as sizing from './sizing-policy.js';
import { SlotHandOff, type Departure } from './slot-hand-off.js';
import { createWarmAgent, readyEventOf, type WarmAgent } from './warm-agent.js';

export type { Departure, VendorConnectionObserver };

/** The longest a starting replica waits for its first warm vendor connection before it serves anyway. */
const WARM_UP_LIMIT_MS = 3000;
const WARM_UP_POLL_MS = 5;

export interface VendorConnectionPoolOptions {
  /** The vendor's base URL (`https://` by default, `http://` for the fake). */
  baseUrl: string;
  /** A connection idle this long is closed by us, before the vendor closes it (ZEGO_KEEPALIVE_IDLE_MS). */
  keepAliveIdleMs: number;
  /** The most calls per second this replica can be given: the fleet's whole budget. */
  budgetPerSecond: number;
  /** How late a call may reach the vendor's door before it crowds the next window (RATE_LIMIT_SAFETY_MARGIN_MS). */
  safetyMarginMs: number;
  /**
   * False: connections are opened when a call needs one, on its slot's path, and a call never
   * waits for a warm one (ZEGO_WARM_CONNECTIONS=false; the pool still measures). Default true.
   */
  warm?: boolean;
  /** Told of every measurement, for metrics. */
  observer?: VendorConnectionObserver;
  now?: () => number;
}

export interface VendorConnectionStats {
  /** Connected and unused right now (ready for the next slot). */
  idle: number;
  /** Carrying a call. */
  busy: number;
  /** Being set up ahead of need. */
  connecting: number;
  /** The most connections the pool keeps: the calls it may have in flight, with headroom. */
  limit: number;
  /** How far ahead of a slot a connection is opened (from the set-up time measured). */
  leadMs: number;
  /** How long a new connection waits after it is up before it carries a call (a proxy on the path may still be connecting onwards). */
  hiddenSetupMs: number;
}

/**
 * The warm vendor connections of one replica. A call on its slot must not wait for a handshake:
 * over a real network a new connection costs one to three round trips before the request leaves,
 * and the vendor counts the call when it arrives, so a late call crowds its neighbours' window.
 *
 * - Connections are opened ahead of need: when a slot is granted and no idle connection will be
 *   left at its time, and, while calls come, enough spares for the calls of the next set-up time;
 *   between calls one stays warm (`connection-pool/sizing-policy.ts`).
 * - At its slot a call takes an idle connection (`ready()` claims one); when none is idle, it
 *   trades its slot for a later one instead of connecting on the slot's path (`slot-hand-off.ts`).
 * - Calls rotate through every connection, spares included (longest idle first), so none idles
 *   out unused while calls come (`warm-agent.ts`, `connection-supply.ts`).
 * - A new plain-HTTP connection carries no call until it has been up for the hidden set-up time: a
 *   TCP proxy on the way accepts at once and connects onwards later (learned upwards from first
 *   exchanges). Over HTTPS the handshake crosses the whole path, so an established one is warm.
 * - Idle connections close after `keepAliveIdleMs` (or one second before the vendor's
 *   `Keep-Alive: timeout`, whichever is sooner), so a request is rarely written on a socket the
 *   vendor has just closed; the pool opens their replacements ahead, warm before they close.
 * - It measures the set-up time, the vendor's answer time and the time from slot to wire, and
 *   sizes itself from them: the calls that may be in flight at the fleet's whole budget
 *   (`connection-measurements.ts`).
 *
 * This class wires those parts together and times each request the agent is given. The agent for
 * axios is `agent`; HTTPS keeps Node's TLS session cache, so reconnects resume.
 */
export class VendorConnectionPool implements OnApplicationBootstrap, OnModuleDestroy {
  readonly agent: WarmAgent;
  private readonly now: () => number;
  private readonly warm: boolean;
  private readonly measurements: ConnectionMeasurements;
  private readonly supply: ConnectionSupply;
  private readonly handOff: SlotHandOff;
  private readonly logger = new Logger(VendorConnectionPool.name);
  /** Looks again when the next idle connection is due for replacement (`sizing.renewals`). */
  private renewalTimer?: NodeJS.Timeout;
  private renewalAt?: number;
  private closed = false;

  constructor(private readonly options: VendorConnectionPoolOptions) {
    const url = new URL(options.baseUrl);
    const now = options.now ?? (() => performance.now());
    this.now = now;
    this.warm = options.warm ?? true;
    this.measurements = new ConnectionMeasurements({
      safetyMarginMs: options.safetyMarginMs,
      hiddenSetupMs: sizing.assumedHiddenSetupMs(url.protocol),
      observer: options.observer,
      logger: this.logger,
      now,
    });
    // Warm: calls rotate through every connection (FIFO), so none idles out while calls keep coming.
    // On demand: Node's default (LIFO), the most recently used connection first.
    const agentOptions = {
      keepAlive: true,
      timeout: options.keepAliveIdleMs,
      maxSockets: sizing.MAX_CONNECTIONS,
      scheduling: this.warm ? ('fifo' as const) : ('lifo' as const),
    };
    this.agent = createWarmAgent(
      url,
      agentOptions,
      {
        requestAdded: (request) => this.requestAdded(request),
        connection: (create) => this.supply.connection(create),
        oldestWarmSpareUpAt: () => this.supply.oldestWarmSpareUpAt(),
      },
      now,
    );
    // A connection just went idle: its close for idling is known from now on.
    this.agent.on('free', () => queueMicrotask(() => this.ensure()));
    this.supply = new ConnectionSupply({
      connect: () => this.agent.connectAhead(),
      readyEvent: readyEventOf(url),
      keepAliveIdleMs: options.keepAliveIdleMs,
      settleMs: () => sizing.settleMs(this.measurements.hiddenSetupMs, options.keepAliveIdleMs),
      measurements: this.measurements,
      connectionClosed: () => this.ensure(),
      now,
    });
    this.handOff = new SlotHandOff({
      warm: this.warm,
      idle: () => this.idleCount(),
      ensure: () => this.ensure(),
      leadMs: () => this.leadMs(),
      asked: () => this.measurements.asked(),
      unreachable: () => this.measurements.unreachable(),
      now,
    });
  }

  /** One call's way through the pool: give it its slot (`expect`), ask at the slot (`ready`), send through `send`. */
  departure(): Departure {
    return this.handOff.departure();
  }

  stats(): VendorConnectionStats {
    return {
      idle: this.idleCount(),
      busy: this.agent.busyConnections(),
      connecting: this.supply.pending(),
      limit: this.limit(),
      leadMs: this.leadMs(),
      hiddenSetupMs: this.measurements.hiddenSetupMs,
    };
  }

  /**
   * Opens a first connection and waits, within a bound, until it can carry a call, so the set-up
   * time is known and the replica takes no traffic before it can send: a call in its first hidden
   * set-up (300 ms over plain HTTP) was not ready at its slot and traded it for later ones, which
   * under a tight budget meant a 429. A vendor that refuses the connection ends the wait at once;
   * one that does not answer, at the bound, and the replica serves anyway.
   */
  async onApplicationBootstrap(): Promise<void> {
    if (!this.warm) return;
    this.supply.open();
    const startedAt = this.now();
    const waitUntil = startedAt + WARM_UP_LIMIT_MS;
    while (this.idleCount() === 0 && !this.measurements.unreachable() && this.now() < waitUntil && !this.closed) {
      await sleep(WARM_UP_POLL_MS);
    }
    const waitedMs = Math.round(this.now() - startedAt);
    if (this.idleCount() > 0) this.logger.log(`A warm vendor connection is ready (after ${waitedMs} ms)`);
    else {
      const why = this.measurements.unreachable() ? 'the vendor could not be reached' : 'still connecting';
      this.logger.warn(`No warm vendor connection after ${waitedMs} ms (${why}); serving anyway`);
    }
  }

  onModuleDestroy(): void {
    this.closed = true;
    clearTimeout(this.renewalTimer);
    this.supply.stop();
    this.agent.destroy();
  }

  /** A request is given to the agent: its departure's claim passes to it, the call counts, and it is timed. */
  private requestAdded(request: http.ClientRequest): void {
    const departure = this.handOff.current();
    departure?.handedOver();
    this.measurements.callLeft();
    let wiredAt: number | undefined;
    let freshSince: number | undefined;
    request.once('socket', (socket: Socket) => {
      if (!request.reusedSocket) freshSince = this.supply.upAtOf(socket) ?? this.now();
    });
    request.once('finish', () => {
      wiredAt = this.now();
      departure?.wired(wiredAt);
      if (departure?.slotAt !== undefined) this.measurements.wired(Math.max(0, wiredAt - departure.slotAt));
    });
    request.once('response', () => {
      if (wiredAt === undefined) return;
      this.measurements.answered(this.now() - wiredAt, freshSince === undefined ? undefined : wiredAt - freshSince);
    });
    // Taking a connection may leave too few idle for the calls right behind this one.
    queueMicrotask(() => this.ensure());
  }

  /**
   * Opens what the calls due within the lead, or the recent rate, need, replacing ahead the idle
   * connections about to close for idling; within the limit.
   */
  private ensure(): void {
    if (this.closed || !this.warm) return;
    const now = this.now();
    const lead = this.leadMs();
    const renewals = sizing.renewals([...this.agent.idleDeadlines(), ...this.supply.spareDeadlines()], now, lead);
    this.lookAgainAt(renewals.nextAt);
    const limit = this.limit();
    this.agent.maxSockets = limit;
    const wanted = sizing.idleWanted({
      dueWithinLead: this.handOff.dueBy(now + lead),
      ...this.measurements.demandAt(now),
      leadMs: lead,
      keepAliveIdleMs: this.options.keepAliveIdleMs,
    });
    const held: sizing.Held = {
      idle: this.idleCount(),
      claimed: this.handOff.claimed(),
      expiring: renewals.expiring,
      busy: this.agent.busyConnections(),
      pending: this.supply.pending(),
      limit,
    };
    for (let i = sizing.connectionsToOpen(wanted, held); i > 0; i--) this.supply.open();
  }

  private lookAgainAt(at: number | undefined): void {
    if (at === this.renewalAt) return;
    clearTimeout(this.renewalTimer);
    this.renewalAt = at;
    this.renewalTimer = undefined;
    if (at === undefined) return;
    this.renewalTimer = setTimeout(() => {
      this.renewalAt = undefined;
      this.ensure();
    }, Math.max(0, at - this.now()));
    this.renewalTimer.unref();
  }

  private leadMs(): number {
    return sizing.leadMs(this.measurements.hiddenSetupMs, this.measurements.setupP99Ms);
  }

  private limit(): number {
    const { budgetPerSecond } = this.options;
    return sizing.connectionLimit({ budgetPerSecond, answerP99Ms: this.measurements.answerP99Ms, leadMs: this.leadMs() });
  }

  /** Connections a call can leave on now: kept-alive ones, and spares past their hidden set-up. */
  private idleCount(): number {
    return this.agent.idleConnections() + this.supply.warmSpares();
  }
}
