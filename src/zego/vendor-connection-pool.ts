import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { SlotReadiness } from '../rate-limit/outbound-rate-limiter.js';
import { RecentDurations } from './recent-durations.js';

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

/** What the pool measures, as it happens. */
export interface VendorConnectionObserver {
  /** A connection was set up (TCP, and TLS for https): `ahead` of need, or `on-path` of a call. */
  connected?(setupMs: number, when: 'ahead' | 'on-path'): void;
  /** A call's request was on the wire (handed to the kernel) this long after its slot. */
  wired?(slotToWireMs: number): void;
  /** The vendor's first byte of an answer came this long after the request was on the wire. */
  answered?(answerMs: number): void;
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

interface Spare {
  upAt: number;
  /** Takes the pool's listeners off, as the agent takes the connection over. */
  release(): void;
}

/** Most connections per replica, whatever the measurements say. */
const MAX_CONNECTIONS = 64;
/** Fewest connections the pool may keep while calls come: the next call's and a spare. */
const MIN_LIMIT = 4;
/** Connections kept warm between calls. */
const MIN_WARM = 1;
/** Headroom over the calls expected in flight. */
const HEADROOM = 1.5;
/** Before any measurement: a WAN handshake (TCP + TLS) and a slow vendor answer. */
const ASSUMED_SETUP_MS = 250;
const ASSUMED_ANSWER_MS = 1000;
/**
 * How long a new plain-HTTP connection may still hold its first bytes after `connect`, until a
 * first exchange shows more: a TCP proxy on the way (a service mesh's sidecar, an egress proxy)
 * accepts at once and connects onwards later. Over HTTPS the handshake crosses the whole path, so
 * a connection is warm once it is up.
 */
const ASSUMED_HIDDEN_SETUP_MS = 300;
/** The most a learned hidden set-up may grow to. */
const MAX_HIDDEN_SETUP_MS = 5000;
/** Kept-alive answers needed before a fresh connection's first answer is compared with them. */
const MIN_REUSED_SAMPLES = 20;
/** Slack on top of a connection's set-up, for timers and scheduling on a busy node: a connection may come up that much late. */
const SCHEDULING_SLACK_MS = 20;
/** After a failed connection attempt, no new one for this long (the vendor may be unreachable). */
const FAILURE_PAUSE_MS = 250;
/** A failed attempt to connect counts as "the vendor is unreachable" for this long. */
const UNREACHABLE_MEMORY_MS = 1000;
/** One warning per kind per this long. */
const WARNING_INTERVAL_MS = 10 * 60_000;

/**
 * The warm vendor connections of one replica. A call on its slot must not wait for a handshake:
 * over a real network a new connection costs one to three round trips before the request leaves,
 * and the vendor counts the call when it arrives, so a late call crowds its neighbours' window.
 *
 * - Connections are opened ahead of need: when a slot is granted and no idle connection will be
 *   left at its time, and, while calls come, enough spares for the calls of the next set-up time;
 *   between calls one stays warm.
 * - At its slot a call takes an idle connection (`ready()` claims one); when none is idle, it
 *   trades its slot for a later one instead of connecting on the slot's path.
 * - Calls rotate through every connection, spares included (longest idle first), so none idles
 *   out unused while calls come.
 * - A new plain-HTTP connection carries no call until it has been up for the hidden set-up time: a
 *   TCP proxy on the way accepts at once and connects onwards later (learned upwards from first
 *   exchanges). Over HTTPS the handshake crosses the whole path, so an established one is warm.
 * - Idle connections close after `keepAliveIdleMs` (or one second before the vendor's
 *   `Keep-Alive: timeout`, whichever is sooner), so a request is rarely written on a socket the
 *   vendor has just closed; the pool opens replacements when calls need them.
 * - It measures the set-up time, the vendor's answer time and the time from slot to wire, and
 *   sizes itself from them: the calls that may be in flight at the fleet's whole budget.
 *
 * The agent for axios is `agent`; HTTPS keeps Node's TLS session cache, so reconnects resume.
 */
export class VendorConnectionPool implements OnApplicationBootstrap, OnModuleDestroy {
  readonly agent: http.Agent & WarmAgent;
  private readonly logger = new Logger(VendorConnectionPool.name);
  private readonly url: URL;
  private readonly now: () => number;
  /** Connections opened ahead and not used yet, with when they came up and the listeners the pool put on them. */
  private readonly spares = new Map<Socket, Spare>();
  /** When each connection came up (spares and on-path ones), for a fresh connection's first exchange. */
  private readonly upAt = new WeakMap<Socket, number>();
  /** When each kept-alive connection last became idle. */
  private readonly freedAt = new WeakMap<Socket, number>();
  private readonly departures = new Set<Departure>();
  private readonly context = new AsyncLocalStorage<Departure>();
  private readonly setup = new RecentDurations();
  private readonly answers = new RecentDurations();
  /** Answers on kept-alive connections: what a fresh connection's first answer is compared with. */
  private readonly reusedAnswers = new RecentDurations();
  /** How long a new connection may hold its first bytes after it is up (learned upwards from first exchanges). */
  private hiddenSetupMs: number;
  private readonly slotToWire = new RecentDurations();
  /** When calls left, the last second of them: the rate this replica is being given. */
  private readonly recentCalls: number[] = [];
  private connecting = 0;
  private claims = 0;
  /** When a call last left, or last asked for a connection. */
  private lastDemandAt = Number.NEGATIVE_INFINITY;
  private lastFailureAt = Number.NEGATIVE_INFINITY;
  private lastConnectedAt = Number.NEGATIVE_INFINITY;
  private readonly warnedAt = new Map<string, number>();
  private closed = false;
  private readonly warm: boolean;

  constructor(private readonly options: VendorConnectionPoolOptions) {
    this.url = new URL(options.baseUrl);
    this.now = options.now ?? (() => performance.now());
    this.warm = options.warm ?? true;
    this.hiddenSetupMs = this.url.protocol === 'https:' ? 0 : ASSUMED_HIDDEN_SETUP_MS;
    // Warm: calls rotate through every connection (FIFO), so none idles out while calls keep coming.
    // On demand: Node's default (LIFO), the most recently used connection first.
    const agentOptions = {
      keepAlive: true,
      timeout: options.keepAliveIdleMs,
      maxSockets: MAX_CONNECTIONS,
      scheduling: this.warm ? ('fifo' as const) : ('lifo' as const),
    };
    this.agent = this.url.protocol === 'https:' ? new WarmHttpsAgent(agentOptions, this) : new WarmHttpAgent(agentOptions, this);
    this.agent.on('free', (socket: Socket) => this.freedAt.set(socket, this.now()));
  }

  /** One call's way through the pool: give it its slot (`expect`), ask at the slot (`ready`), send through `send`. */
  departure(): Departure {
    return new Departure(this);
  }

  stats(): VendorConnectionStats {
    const idle = this.idleCount();
    return {
      idle,
      busy: this.busyCount(),
      connecting: this.connecting + this.settlingSpares(),
      limit: this.limit(),
      leadMs: this.leadMs(),
      hiddenSetupMs: this.hiddenSetupMs,
    };
  }

  /** Opens a first connection, so the set-up time is known before the first call. */
  onApplicationBootstrap(): void {
    if (this.warm) this.open();
  }

  onModuleDestroy(): void {
    this.closed = true;
    for (const socket of this.spares.keys()) socket.destroy();
    this.spares.clear();
    this.agent.destroy();
  }

  // ------------------------------------------------------------------ for Departure

  /** @internal */
  expected(departure: Departure): void {
    this.departures.add(departure);
    this.ensure();
    const lead = this.leadMs();
    const checkIn = departure.slotAt! - lead - this.now();
    if (checkIn > 0) departure.arm(setTimeout(() => this.ensure(), checkIn));
  }

  /** @internal */
  claim(): boolean {
    this.lastDemandAt = this.now();
    if (!this.warm) return true;
    if (this.idleCount() - this.claims > 0) {
      this.claims++;
      return true;
    }
    this.ensure();
    // The vendor cannot be reached: a call fails to connect, sending nothing, and says so at once
    // rather than waiting out its slots for a connection that will not come.
    return this.unreachable();
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
    return this.context.run(departure, send);
  }

  // ------------------------------------------------------------------ for the agents

  /** @internal A request is given to the agent: time it, and count the call. */
  requestAdded(request: http.ClientRequest): void {
    const departure = this.context.getStore();
    departure?.handedOver();
    const now = this.now();
    this.lastDemandAt = now;
    this.recentCalls.push(now);
    while (this.recentCalls.length > 0 && this.recentCalls[0]! < now - 1000) this.recentCalls.shift();
    let wiredAt: number | undefined;
    let freshSince: number | undefined;
    request.once('socket', (socket) => {
      if (!request.reusedSocket) freshSince = this.upAt.get(socket) ?? this.now();
    });
    request.once('finish', () => {
      wiredAt = this.now();
      if (departure?.slotAt !== undefined) {
        const late = Math.max(0, wiredAt - departure.slotAt);
        this.slotToWire.add(late);
        this.options.observer?.wired?.(late);
        this.warnNearMargin('slot-to-wire', this.slotToWire.quantile(0.99, 0), 'from a slot to the wire');
      }
    });
    request.once('response', () => {
      if (wiredAt === undefined) return;
      const answerMs = this.now() - wiredAt;
      this.answers.add(answerMs);
      this.options.observer?.answered?.(answerMs);
      if (freshSince === undefined) this.reusedAnswers.add(answerMs);
      else this.firstExchange(wiredAt - freshSince, answerMs);
    });
    // Taking a connection may leave too few idle for the calls right behind this one.
    queueMicrotask(() => this.ensure());
  }

  /**
   * @internal Whether the next request should take a spare rather than the agent's longest-idle
   * connection: when the spare has been idle longer. Every connection then carries calls in turn,
   * so spares do not idle out unused while kept-alive ones carry everything.
   */
  preferSpare(longestIdle: Socket | undefined): boolean {
    if (!this.warm) return false;
    const now = this.now();
    const settle = this.settleMs();
    let oldestWarm: number | undefined;
    for (const [socket, { upAt }] of this.spares) {
      if (socket.destroyed || now - upAt < settle) continue;
      oldestWarm = upAt;
      break;
    }
    if (oldestWarm === undefined) return false;
    if (longestIdle === undefined) return true;
    return oldestWarm < (this.freedAt.get(longestIdle) ?? Number.POSITIVE_INFINITY);
  }

  /** @internal The agent needs a connection: the oldest spare, or (only when none is left) a new one on the call's path. */
  connection(create: () => Duplex | null | undefined): Duplex | null | undefined {
    for (const [spare, { release }] of this.spares) {
      // In the order they came up: the first is the one idle longest, and the first to be warm.
      this.spares.delete(spare);
      release();
      if (!spare.destroyed) return this.watched(spare);
    }
    const startedAt = this.now();
    const socket = create();
    if (socket) {
      this.watched(socket);
      let up = false;
      socket.once(this.readyEvent(), () => {
        up = true;
        this.upAt.set(socket as Socket, this.now());
        this.connected(this.now() - startedAt, 'on-path');
      });
      // The request has its own error listener; this one only remembers that connecting failed.
      socket.once('error', (error) => {
        if (!up) this.failed(error);
      });
    }
    return socket;
  }

  /** A connection the agent holds: when it closes (idle, or the vendor closed it), the pool may need a replacement. */
  private watched<T extends Duplex>(socket: T): T {
    socket.once('close', () => setImmediate(() => this.ensure()));
    return socket;
  }

  /**
   * A fresh connection's first answer, `ageMs` after it came up. Slower than nearly every kept-alive
   * answer, on a connection young enough to have been held, means the path held its first bytes (a
   * proxy connecting onwards): by about the difference, from when it came up. Spares then wait
   * that long before they carry a call; at most twice as long as before per answer, so one slow
   * answer of the vendor's cannot stall the pool.
   */
  private firstExchange(ageMs: number, answerMs: number): void {
    if (this.reusedAnswers.count < MIN_REUSED_SAMPLES || ageMs > 2 * this.hiddenSetupMs) return;
    if (answerMs <= this.reusedAnswers.quantile(0.99, 0) + SCHEDULING_SLACK_MS / 4) return;
    const held = ageMs + answerMs - this.reusedAnswers.quantile(0.5, 0);
    const raised = Math.min(held, 2 * Math.max(this.hiddenSetupMs, SCHEDULING_SLACK_MS), MAX_HIDDEN_SETUP_MS);
    this.hiddenSetupMs = Math.max(this.hiddenSetupMs, raised);
  }

  // ------------------------------------------------------------------ sizing

  private ensure(): void {
    if (this.closed || !this.warm) return;
    const now = this.now();
    const lead = this.leadMs();
    const limit = this.limit();
    this.agent.maxSockets = limit;
    let dueSoon = 0;
    for (const departure of this.departures) {
      if (departure.waitingForSlot && departure.slotAt! <= now + lead) dueSoon++;
    }
    while (this.recentCalls.length > 0 && this.recentCalls[0]! < now - 1000) this.recentCalls.shift();
    const calling = dueSoon > 0 || now - this.lastDemandAt < this.options.keepAliveIdleMs;
    // The calls that may leave within one set-up time, at the rate this replica is given now, and a spare.
    const steady = Math.ceil((this.recentCalls.length * lead) / 1000);
    // Between calls, one connection stays warm (replaced as it idles out), so the next call after a
    // quiet spell does not wait for a handshake.
    const wantIdle = calling ? Math.max(dueSoon, steady) + 1 : MIN_WARM;
    const pending = this.connecting + this.settlingSpares();
    const have = this.idleCount() - this.claims + pending;
    const room = limit - (this.idleCount() + this.busyCount() + pending);
    const toOpen = Math.min(wantIdle - have, room);
    for (let i = 0; i < toOpen; i++) this.open();
  }

  /**
   * How far ahead of a call its connection must be opened: the hidden set-up, and twice the set-up
   * measured or the scheduling slack, whichever is more (a fixed hidden set-up leaves no room else).
   */
  private leadMs(): number {
    return this.hiddenSetupMs + Math.max(SCHEDULING_SLACK_MS, 2 * this.setup.quantile(0.99, ASSUMED_SETUP_MS));
  }

  /** The calls that may be in flight at the whole budget: each holds a connection for its answer and its set-up. */
  private limit(): number {
    const heldMs = this.answers.quantile(0.99, ASSUMED_ANSWER_MS) + this.leadMs();
    const inFlight = (this.options.budgetPerSecond * heldMs) / 1000;
    return Math.min(MAX_CONNECTIONS, Math.max(MIN_LIMIT, Math.ceil(inFlight * HEADROOM) + 2));
  }

  private open(): void {
    if (this.closed || this.now() - this.lastFailureAt < FAILURE_PAUSE_MS) return;
    const startedAt = this.now();
    this.connecting++;
    let socket: Socket;
    try {
      socket = this.agent.connectAhead() as Socket;
    } catch (error) {
      this.connecting--;
      this.failed(error);
      return;
    }
    const onError = (error: Error): void => {
      this.connecting--;
      this.failed(error);
      socket.destroy();
    };
    socket.once('error', onError);
    socket.once(this.readyEvent(), () => {
      socket.removeListener('error', onError);
      this.connecting--;
      this.connected(this.now() - startedAt, 'ahead');
      if (this.closed) {
        socket.destroy();
        return;
      }
      const upAt = this.now();
      this.upAt.set(socket, upAt);
      // An idle spare closes like an idle pooled connection: before the vendor closes it.
      const onTimeout = (): void => {
        socket.destroy();
      };
      const onClose = (): void => {
        this.spares.delete(socket);
        setImmediate(() => this.ensure());
      };
      const onSpareError = (): void => {
        socket.destroy();
      };
      socket.setTimeout(this.options.keepAliveIdleMs);
      socket.once('timeout', onTimeout);
      socket.once('close', onClose);
      socket.on('error', onSpareError);
      // A spare must not keep the process up; the agent refs it while it carries a call.
      socket.unref();
      this.spares.set(socket, {
        upAt,
        release: () => {
          socket.removeListener('timeout', onTimeout);
          socket.removeListener('close', onClose);
          socket.removeListener('error', onSpareError);
        },
      });
    });
  }

  private connected(setupMs: number, when: 'ahead' | 'on-path'): void {
    this.lastConnectedAt = this.now();
    this.setup.add(setupMs);
    this.options.observer?.connected?.(setupMs, when);
    // Opened ahead, a slow set-up costs nothing; one a call waited for made that call late.
    if (when === 'on-path') this.warnNearMargin('set-up', this.setup.quantile(0.99, 0), 'to set up a vendor connection on their path');
  }

  private failed(error: unknown): void {
    this.lastFailureAt = this.now();
    this.logger.debug(`Opening a vendor connection ahead failed: ${error instanceof Error ? error.message : String(error)}`);
  }

  /** The last attempt to connect failed, recently, and none succeeded since. */
  private unreachable(): boolean {
    return this.lastFailureAt > this.lastConnectedAt && this.now() - this.lastFailureAt < UNREACHABLE_MEMORY_MS;
  }

  private readyEvent(): 'connect' | 'secureConnect' {
    return this.url.protocol === 'https:' ? 'secureConnect' : 'connect';
  }

  private warnNearMargin(kind: string, p99: number, what: string): void {
    const margin = this.options.safetyMarginMs;
    if (p99 < margin / 2) return;
    const now = this.now();
    if (now - (this.warnedAt.get(kind) ?? Number.NEGATIVE_INFINITY) < WARNING_INTERVAL_MS) return;
    this.warnedAt.set(kind, now);
    this.logger.warn(
      `Vendor calls take ${p99.toFixed(1)} ms (p99) ${what}, more than half of RATE_LIMIT_SAFETY_MARGIN_MS ` +
        `(${margin} ms): calls may reach the vendor late enough to crowd the next window; raise ` +
        'RATE_LIMIT_SAFETY_MARGIN_MS, or find what delays them',
    );
  }

  // The agent serves the vendor's origin only: every connection it keeps is one of the pool's.
  /** Connections a call can leave on now: kept-alive ones, and spares past their hidden set-up. */
  private idleCount(): number {
    let free = 0;
    for (const sockets of Object.values(this.agent.freeSockets)) free += (sockets ?? []).filter((socket) => !socket.destroyed).length;
    return free + this.warmSpares();
  }

  private warmSpares(): number {
    const now = this.now();
    let warm = 0;
    const settle = this.settleMs();
    for (const [socket, { upAt }] of this.spares) if (!socket.destroyed && now - upAt >= settle) warm++;
    return warm;
  }

  /** How long a spare waits after it is up before it carries a call; usable some time before it idles out, whatever was learned. */
  private settleMs(): number {
    return Math.min(this.hiddenSetupMs, this.options.keepAliveIdleMs / 2);
  }

  /** Spares still inside their hidden set-up: as good as connecting. */
  private settlingSpares(): number {
    return this.spares.size - this.warmSpares();
  }

  private busyCount(): number {
    let busy = 0;
    for (const sockets of Object.values(this.agent.sockets)) busy += (sockets ?? []).length;
    return busy;
  }

  /** @internal What a connection to the vendor is opened with, as the agent would open it for a request. */
  connectOptions(): http.ClientRequestArgs & { servername?: string; _agentKey?: string } {
    const port = this.url.port !== '' ? Number(this.url.port) : this.url.protocol === 'https:' ? 443 : 80;
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    return { host, port, ...(this.url.protocol === 'https:' && isHostName(host) && { servername: host }) };
  }
}

/** A call's slot and its connection, from grant to hand-over to the agent. */
export class Departure implements SlotReadiness {
  /** The slot, on this replica's monotonic clock. */
  slotAt?: number;
  waitingForSlot = false;
  private claimed = false;
  private timer?: NodeJS.Timeout;

  constructor(private readonly pool: VendorConnectionPool) {}

  expect(slotAt: number): void {
    this.slotAt = slotAt;
    this.waitingForSlot = true;
    this.disarm();
    this.pool.expected(this);
  }

  ready(): boolean {
    if (this.claimed) return true;
    this.claimed = this.pool.claim();
    return this.claimed;
  }

  /** Sends through the pool: the request it makes is this departure's (timings, the connection it claimed). */
  send<T>(request: () => Promise<T>): Promise<T> {
    return this.pool.run(this, request);
  }

  /** The call is over (sent, refused or given up): nothing more is expected of the pool for it. */
  done(): void {
    this.disarm();
    this.waitingForSlot = false;
    if (this.claimed) this.pool.unclaim();
    this.claimed = false;
    this.pool.forget(this);
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
    if (this.claimed) this.pool.unclaim();
    this.claimed = false;
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

interface WarmAgent {
  connectAhead(): Duplex;
}

type AgentConstructor = new (options: https.AgentOptions) => http.Agent;

/**
 * The agent of `Base` (http's or https's) with the pool's hooks: new connections come from the
 * spares first, requests are timed and take connections in turn. Opened ahead through Base's own
 * createConnection, so https keeps its TLS session cache.
 */
function warmAgentOf(Base: AgentConstructor) {
  const baseAddRequest = (Base.prototype as unknown as AddRequest).addRequest;
  return class extends Base implements WarmAgent {
    constructor(
      options: https.AgentOptions,
      private readonly pool: VendorConnectionPool,
    ) {
      super(options);
    }

    override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void) {
      return this.pool.connection(() => super.createConnection(options, callback));
    }

    connectAhead(): Duplex {
      return super.createConnection(connectionOptions(this, this.pool))!;
    }

    addRequest(request: http.ClientRequest, options: http.ClientRequestArgs): void {
      this.pool.requestAdded(request);
      addRequestInTurn(this, this.pool, baseAddRequest, request, options);
    }
  };
}

const WarmHttpAgent = warmAgentOf(http.Agent);
const WarmHttpsAgent = warmAgentOf(https.Agent);

interface AddRequest {
  addRequest(request: http.ClientRequest, options: http.ClientRequestArgs): void;
}

/**
 * Hands the request to the agent, which takes its longest-idle kept-alive connection, or asks
 * createConnection (a spare) when it has none. When a spare has been idle longer, the agent's idle
 * list is hidden for that one request, so it asks for a connection and gets the spare.
 */
function addRequestInTurn(
  agent: http.Agent,
  pool: VendorConnectionPool,
  addRequest: AddRequest['addRequest'],
  request: http.ClientRequest,
  options: http.ClientRequestArgs,
): void {
  const free = agent.freeSockets as Record<string, Socket[] | undefined>;
  const names = Object.keys(free);
  const longestIdle = names.length === 1 ? free[names[0]!]?.[0] : undefined;
  if (names.length > 1 || !pool.preferSpare(longestIdle)) {
    addRequest.call(agent, request, options);
    return;
  }
  const hidden = names.length === 1 ? { name: names[0]!, sockets: free[names[0]!]! } : undefined;
  if (hidden) delete free[hidden.name];
  try {
    addRequest.call(agent, request, options);
  } finally {
    if (hidden) free[hidden.name] = [...hidden.sockets, ...(free[hidden.name] ?? [])];
  }
}

/** The options the agent itself would connect with (its own merged in, its key for the session cache). */
function connectionOptions(agent: http.Agent, pool: VendorConnectionPool): http.ClientRequestArgs {
  const options = { ...pool.connectOptions(), ...(agent as unknown as { options: object }).options } as http.ClientRequestArgs & {
    _agentKey?: string;
    keepAlive?: boolean;
    keepAliveInitialDelay?: number;
  };
  options._agentKey = agent.getName(options);
  options.keepAlive = true;
  options.keepAliveInitialDelay = (agent as unknown as { keepAliveMsecs?: number }).keepAliveMsecs ?? 1000;
  return options;
}

function isHostName(host: string): boolean {
  // TLS SNI carries names only, never an address.
  return !/^[\d.]+$/.test(host) && !host.includes(':');
}
