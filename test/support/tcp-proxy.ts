/**
 * A TCP proxy from a local port to one target (host:port) that a test can cut and restore, and
 * shape with delays: what stands between a gateway and its Redis (or its vendor) when a test
 * needs the network between them to fail while both ends keep running.
 *
 * - **Cut**, in one of two ways for new connections: `refuse` resets each at once (RST, as a
 *   closed port would look to a client that had just connected), `blackhole` accepts each and
 *   forwards nothing until the cut ends (the client times out). Connections already open are
 *   destroyed (reset) by default, or frozen with `openConnections: 'freeze'`: kept open, nothing
 *   read or forwarded either way until the cut ends, as a network partition looks to both ends.
 * - **Restore** forwards again: frozen connections carry on with what they held, and connections
 *   a blackhole accepted are connected through to the target (as a retransmitted SYN would be).
 * - **Shaping**, per direction, a fixed one-way delay and a random jitter on top (order is kept:
 *   no chunk overtakes an earlier one), and a set-up delay per connection before its first byte
 *   moves. Changes apply to chunks and connections from then on.
 * - **Stats**: connections opened, forwarded and refused, open now, bytes each way.
 *
 * `controlServer()` drives one proxy over HTTP (JSON); tcp-proxy-main.ts runs both in a process
 * of their own, and tcp-proxy-process.ts is the tests' handle on that process. Node built-ins only.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export type CutMode = 'refuse' | 'blackhole';
/** What a cut does to the connections already open. */
export type OpenConnectionsOnCut = 'destroy' | 'freeze';

export interface CutOptions {
  /** Default `destroy`. */
  openConnections?: OpenConnectionsOnCut;
}

export interface DirectionShaping {
  /** Added to every chunk's trip (ms). */
  delayMs?: number;
  /** Up to this much more per chunk, uniformly at random (ms). */
  jitterMs?: number;
}

export interface Shaping {
  /** Client → target. */
  upstream?: DirectionShaping;
  /** Target → client. */
  downstream?: DirectionShaping;
  /** How long a new connection waits after it was accepted before it is connected through (ms). */
  setupDelayMs?: number;
}

export interface TcpProxyTarget {
  host: string;
  port: number;
}

export interface TcpProxyStats {
  state: 'open' | CutMode;
  /** Connections accepted from clients. */
  opened: number;
  /** Connections connected through to the target. */
  forwarded: number;
  /** Connections reset at once by a `refuse` cut. */
  refused: number;
  /** Connections the target refused (or that could not reach it): reset towards the client. */
  targetFailures: number;
  /** Connections open now (held and frozen ones included). */
  open: number;
  /** Bytes read from clients. */
  bytesUpstream: number;
  /** Bytes read from the target. */
  bytesDownstream: number;
}

/** More than this queued in one direction and the sending side is paused until it drains. */
const HIGH_WATER_BYTES = 1 << 20;
/** After one side closed, how long the other may take to close by itself before it is destroyed. */
const CLOSE_GRACE_MS = 1000;
const END = Symbol('end');

/** Chunks of one direction, each released at its due time, in order. */
class DelayLine {
  private readonly queue: Array<{ at: number; chunk: Buffer | typeof END }> = [];
  private timer: NodeJS.Timeout | undefined;
  private lastAt = Number.NEGATIVE_INFINITY;
  private held = false;
  private bytes = 0;

  constructor(
    private readonly shaping: () => DirectionShaping,
    private readonly deliver: (chunk: Buffer | typeof END) => void,
  ) {}

  get queuedBytes(): number {
    return this.bytes;
  }

  get empty(): boolean {
    return this.queue.length === 0;
  }

  push(chunk: Buffer | typeof END): void {
    const { delayMs = 0, jitterMs = 0 } = this.shaping();
    // Never before the chunk ahead of it: jitter spreads arrivals, it does not reorder a stream.
    const at = Math.max(this.lastAt, performance.now() + delayMs + Math.random() * jitterMs);
    this.lastAt = at;
    this.queue.push({ at, chunk });
    if (chunk !== END) this.bytes += chunk.length;
    this.pump();
  }

  hold(): void {
    this.held = true;
    clearTimeout(this.timer);
  }

  release(): void {
    this.held = false;
    this.pump();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
    this.bytes = 0;
  }

  private pump(): void {
    if (this.held) return;
    clearTimeout(this.timer);
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now) {
      const { chunk } = this.queue.shift()!;
      if (chunk !== END) this.bytes -= chunk.length;
      this.deliver(chunk);
    }
    const next = this.queue[0];
    if (next) this.timer = setTimeout(() => this.pump(), Math.max(0, next.at - now));
  }
}

/** One client connection and, once connected through, its twin towards the target. */
class ProxiedConnection {
  private upstream: Socket | undefined;
  private readonly toTarget: DelayLine;
  private readonly toClient: DelayLine;
  private frozen = false;
  /** Accepted by a blackhole: waits for the cut to end before it is connected through. */
  private held = false;
  /** The target accepted the connection through. */
  private connected = false;
  private closed = false;
  private setupTimer: NodeJS.Timeout | undefined;
  private readonly blocked = { toTarget: false, toClient: false };

  constructor(
    private readonly proxy: TcpProxy,
    private readonly client: Socket,
    private readonly onClosed: (connection: ProxiedConnection) => void,
  ) {
    this.toTarget = new DelayLine(
      () => proxy.shaping.upstream ?? {},
      (chunk) => this.deliver(chunk, 'toTarget'),
    );
    this.toClient = new DelayLine(
      () => proxy.shaping.downstream ?? {},
      (chunk) => this.deliver(chunk, 'toClient'),
    );
    client.on('data', (chunk: Buffer) => {
      proxy.counters.bytesUpstream += chunk.length;
      this.toTarget.push(chunk);
      this.updateFlow();
    });
    client.on('end', () => this.toTarget.push(END));
    client.on('error', () => this.destroy(true));
    client.on('close', () => this.sideClosed(this.upstream));
  }

  /** Connects through to the target after the set-up delay (at once without one). */
  start(): void {
    this.held = false;
    const delay = this.proxy.shaping.setupDelayMs ?? 0;
    if (delay > 0) this.setupTimer = setTimeout(() => this.connectThrough(), delay);
    else this.connectThrough();
  }

  /** Accepted during a blackhole: connected through when the cut ends. */
  hold(): void {
    this.held = true;
  }

  freeze(): void {
    this.frozen = true;
    this.toTarget.hold();
    this.toClient.hold();
    this.updateFlow();
  }

  /** Ends a freeze or a blackhole hold. */
  thaw(): void {
    if (this.held) {
      this.start();
      return;
    }
    if (!this.frozen) return;
    this.frozen = false;
    this.toTarget.release();
    this.toClient.release();
    this.updateFlow();
  }

  /** Both sides at once; `reset` sends an RST to each where the platform allows it. */
  destroy(reset: boolean): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.setupTimer);
    this.toTarget.clear();
    this.toClient.clear();
    for (const socket of [this.client, this.upstream]) {
      if (!socket || socket.destroyed) continue;
      if (reset && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
      else socket.destroy();
    }
    this.onClosed(this);
  }

  private connectThrough(): void {
    if (this.closed || this.upstream) return;
    const upstream = connect({ host: this.proxy.target.host, port: this.proxy.target.port, allowHalfOpen: true });
    this.upstream = upstream;
    upstream.pause();
    upstream.once('connect', () => {
      this.connected = true;
      this.proxy.counters.forwarded += 1;
      upstream.on('data', (chunk: Buffer) => {
        this.proxy.counters.bytesDownstream += chunk.length;
        this.toClient.push(chunk);
        this.updateFlow();
      });
      upstream.on('end', () => this.toClient.push(END));
      upstream.on('close', () => this.sideClosed(this.client));
      this.updateFlow();
    });
    upstream.once('error', () => {
      if (!this.connected) this.proxy.counters.targetFailures += 1;
      this.destroy(true);
    });
  }

  private deliver(chunk: Buffer | typeof END, direction: 'toTarget' | 'toClient'): void {
    const destination = direction === 'toTarget' ? this.upstream : this.client;
    if (!destination || destination.destroyed) return;
    if (chunk === END) {
      destination.end();
      return;
    }
    if (!destination.write(chunk) && !this.blocked[direction]) {
      this.blocked[direction] = true;
      this.updateFlow();
      destination.once('drain', () => {
        this.blocked[direction] = false;
        this.updateFlow();
      });
    }
    this.updateFlow();
  }

  /** Reads from a side only while what it sends can move on. */
  private updateFlow(): void {
    if (this.closed) return;
    // Nothing is read from the client before the target is there to take it.
    const moving = this.connected && !this.frozen;
    const readClient = moving && !this.blocked.toTarget && this.toTarget.queuedBytes < HIGH_WATER_BYTES;
    const readTarget = moving && !this.blocked.toClient && this.toClient.queuedBytes < HIGH_WATER_BYTES;
    if (readClient) this.client.resume();
    else this.client.pause();
    if (readTarget) this.upstream?.resume();
    else this.upstream?.pause();
  }

  /** One side closed: the other gets what was still on its way, then its end, then a grace period. */
  private sideClosed(other: Socket | undefined): void {
    if (this.closed) return;
    const bothClosed = this.client.destroyed && (this.upstream === undefined || this.upstream.destroyed);
    if (bothClosed || other === undefined) {
      this.destroy(false);
      return;
    }
    const line = other === this.upstream ? this.toTarget : this.toClient;
    if (line.empty) other.end();
    else line.push(END);
    setTimeout(() => this.destroy(false), CLOSE_GRACE_MS).unref();
  }
}

type Counters = Omit<TcpProxyStats, 'state' | 'open'>;

export class TcpProxy {
  private server: Server | null = null;
  private readonly connections = new Set<ProxiedConnection>();
  private state: 'open' | CutMode = 'open';
  /** The shaping in effect, read by the connections at each chunk and set-up (change it with shape()). */
  shaping: Shaping;
  /** Kept up to date by the connections; read through stats(). */
  readonly counters: Counters = {
    opened: 0,
    forwarded: 0,
    refused: 0,
    targetFailures: 0,
    bytesUpstream: 0,
    bytesDownstream: 0,
  };

  constructor(
    readonly target: TcpProxyTarget,
    shaping: Shaping = {},
  ) {
    assertShaping(shaping);
    this.shaping = shaping;
  }

  /** Listens on `port` (0: a free one) and resolves with the port. */
  listen(port = 0, host = '127.0.0.1'): Promise<number> {
    if (this.server) return Promise.reject(new Error('TcpProxy already listening'));
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        this.server = server;
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  get port(): number {
    const address = this.server?.address();
    if (!address || typeof address === 'string') throw new Error('TcpProxy is not listening');
    return address.port;
  }

  cut(mode: CutMode, options: CutOptions = {}): void {
    assertCut(mode, options);
    this.state = mode;
    for (const connection of [...this.connections]) {
      if ((options.openConnections ?? 'destroy') === 'destroy') connection.destroy(true);
      else connection.freeze();
    }
  }

  restore(): void {
    this.state = 'open';
    for (const connection of [...this.connections]) connection.thaw();
  }

  shape(shaping: Shaping): void {
    assertShaping(shaping);
    this.shaping = shaping;
  }

  stats(): TcpProxyStats {
    return { state: this.state, ...this.counters, open: this.connections.size };
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const connection of [...this.connections]) connection.destroy(false);
    await closed;
  }

  private accept(socket: Socket): void {
    this.counters.opened += 1;
    if (this.state === 'refuse') {
      this.counters.refused += 1;
      socket.on('error', () => undefined);
      socket.resetAndDestroy();
      return;
    }
    const connection = new ProxiedConnection(this, socket, (c) => this.connections.delete(c));
    this.connections.add(connection);
    if (this.state === 'blackhole') connection.hold();
    else connection.start();
  }
}

// ------------------------------------------------------------------ input checks

function assertCut(mode: unknown, options: CutOptions): void {
  if (mode !== 'refuse' && mode !== 'blackhole') throw new Error('mode must be refuse or blackhole');
  const open = options.openConnections;
  if (open !== undefined && open !== 'destroy' && open !== 'freeze') throw new Error('openConnections must be destroy or freeze');
}

function assertShaping(value: unknown): asserts value is Shaping {
  if (!isPlainObject(value)) throw new Error('shaping must be an object');
  const { upstream, downstream, setupDelayMs, ...rest } = value;
  if (Object.keys(rest).length > 0) throw new Error(`unknown shaping fields: ${Object.keys(rest).join(', ')}`);
  assertMs(setupDelayMs, 'setupDelayMs');
  for (const [name, direction] of [
    ['upstream', upstream],
    ['downstream', downstream],
  ] as const) {
    if (direction === undefined) continue;
    if (!isPlainObject(direction)) throw new Error(`${name} must be an object`);
    const { delayMs, jitterMs, ...others } = direction;
    if (Object.keys(others).length > 0) throw new Error(`unknown ${name} fields: ${Object.keys(others).join(', ')}`);
    assertMs(delayMs, `${name}.delayMs`);
    assertMs(jitterMs, `${name}.jitterMs`);
  }
}

function assertMs(value: unknown, name: string): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
    throw new Error(`${name} must be a non-negative number of milliseconds`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ------------------------------------------------------------------ control over HTTP

/**
 * The proxy's control API, JSON over HTTP; every answer but an error is the stats after the change:
 *   GET /stats
 *   POST /cut      {"mode": "refuse" | "blackhole", "openConnections"?: "destroy" | "freeze"}
 *   POST /restore
 *   PUT /shaping   a Shaping (replaces the one in effect)
 * 400 with {"error"} for a bad body, 404 for anything else.
 */
export function controlServer(proxy: TcpProxy): HttpServer {
  return createHttpServer((request, response) => {
    void handleControl(proxy, request, response).catch((error: unknown) =>
      sendJson(response, 500, { error: error instanceof Error ? error.message : String(error) }),
    );
  });
}

async function handleControl(proxy: TcpProxy, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const route = `${request.method ?? ''} ${new URL(request.url ?? '/', 'http://control.invalid').pathname}`;
  const text = await readText(request);
  const body = (): Record<string, unknown> => {
    const parsed: unknown = text === '' ? {} : JSON.parse(text);
    if (!isPlainObject(parsed)) throw new Error('body must be a JSON object');
    return parsed;
  };
  try {
    switch (route) {
      case 'GET /stats':
        break;
      case 'POST /cut': {
        const { mode, openConnections } = body();
        proxy.cut(mode as CutMode, { openConnections: openConnections as OpenConnectionsOnCut | undefined });
        break;
      }
      case 'POST /restore':
        proxy.restore();
        break;
      case 'PUT /shaping':
        proxy.shape(body() as Shaping);
        break;
      default:
        sendJson(response, 404, { error: `no control route ${route}` });
        return;
    }
  } catch (error) {
    sendJson(response, 400, { error: error instanceof Error ? error.message : String(error) });
    return;
  }
  sendJson(response, 200, proxy.stats());
}

function readText(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function sendJson(response: ServerResponse, status: number, payload: unknown): void {
  if (response.headersSent) return;
  const text = JSON.stringify(payload);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
}
