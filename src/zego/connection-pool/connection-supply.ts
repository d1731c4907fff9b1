import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionMeasurements } from './connection-measurements.js';
import type { IdleDeadline } from './sizing-policy.js';

export interface ConnectionSupplyOptions {
  /** Opens a connection as the agent would for a request. */
  connect(): Duplex;
  /** When a connection is up: 'connect', or 'secureConnect' over https. */
  readyEvent: 'connect' | 'secureConnect';
  /** A spare idle this long is closed, as the agent closes its idle connections. */
  keepAliveIdleMs: number;
  /** How long a spare waits after it is up before it carries a call (the hidden set-up, as learned now). */
  settleMs(): number;
  measurements: ConnectionMeasurements;
  /** A connection closed (idle, or the vendor closed it): the pool may need a replacement. */
  connectionClosed(): void;
  now(): number;
}

interface Spare {
  upAt: number;
  /** Takes the supply's listeners off, as the agent takes the connection over. */
  release: () => void;
}

/** After a failed connection attempt, no new one for this long (the vendor may be unreachable). */
const FAILURE_PAUSE_MS = 250;

/**
 * The connections the agent gets: spares opened ahead of need, handed over longest idle first, and
 * (only when none is left) a new one on the call's path. Each one's set-up is measured.
 */
export class ConnectionSupply {
  /** Connections opened ahead and not used yet, in the order they came up. */
  private readonly spares = new Map<Socket, Spare>();
  /** When each connection came up (spares and on-path ones), for a fresh connection's first exchange. */
  private readonly upAt = new WeakMap<Socket, number>();
  private connecting = 0;
  private stopped = false;

  constructor(private readonly options: ConnectionSupplyOptions) {}

  /** Opens a spare, unless a connection attempt failed just now. */
  open(): void {
    const { measurements } = this.options;
    if (this.stopped || measurements.msSinceFailure() < FAILURE_PAUSE_MS) return;
    const startedAt = this.options.now();
    this.connecting++;
    let socket: Socket;
    try {
      socket = this.options.connect() as Socket;
    } catch (error) {
      this.connecting--;
      measurements.failed(error);
      return;
    }
    const onError = (error: Error): void => {
      this.connecting--;
      measurements.failed(error);
      socket.destroy();
    };
    socket.once('error', onError);
    socket.once(this.options.readyEvent, () => {
      socket.removeListener('error', onError);
      this.connecting--;
      const upAt = this.cameUp(socket, startedAt, 'ahead');
      if (this.stopped) socket.destroy();
      else this.keepSpare(socket, upAt);
    });
  }

  /** For the agent's createConnection: the oldest spare, or (only when none is left) a new one made by `create`. */
  connection(create: () => Duplex | null | undefined): Duplex | null | undefined {
    for (const [spare, { release }] of this.spares) {
      // In the order they came up: the first is the one idle longest, and the first to be warm.
      this.spares.delete(spare);
      release();
      if (!spare.destroyed) return this.watched(spare);
    }
    const startedAt = this.options.now();
    const socket = create();
    if (socket) {
      this.watched(socket);
      let up = false;
      socket.once(this.options.readyEvent, () => {
        up = true;
        this.cameUp(socket as Socket, startedAt, 'on-path');
      });
      // The request has its own error listener; this one only remembers that connecting failed.
      socket.once('error', (error) => {
        if (!up) this.options.measurements.failed(error);
      });
    }
    return socket;
  }

  /** When `socket` came up; undefined for one not opened here. */
  upAtOf(socket: Socket): number | undefined {
    return this.upAt.get(socket);
  }

  /** Spares past their hidden set-up: a call can leave on them now. */
  warmSpares(): number {
    return Array.from(this.warm()).length;
  }

  /** Connections being set up, and spares still inside their hidden set-up: as good as connecting. */
  pending(): number {
    return this.connecting + this.spares.size - this.warmSpares();
  }

  /** When each spare, warm or settling, will be closed for idling, and from when it is warm. */
  spareDeadlines(): IdleDeadline[] {
    const { keepAliveIdleMs } = this.options;
    const settle = this.options.settleMs();
    const deadlines: IdleDeadline[] = [];
    for (const [socket, { upAt }] of this.spares) {
      if (!socket.destroyed) deadlines.push({ closesAt: upAt + keepAliveIdleMs, usableFrom: upAt + settle });
    }
    return deadlines;
  }

  /** When the spare idle longest came up, if it is warm; undefined when none is. */
  oldestWarmSpareUpAt(): number | undefined {
    for (const upAt of this.warm()) return upAt;
    return undefined;
  }

  /** Closes every spare; none is opened from now on. */
  stop(): void {
    this.stopped = true;
    for (const socket of this.spares.keys()) socket.destroy();
    this.spares.clear();
  }

  /** When each warm spare came up, longest idle first. */
  private *warm(): Generator<number> {
    const now = this.options.now();
    const settle = this.options.settleMs();
    for (const [socket, { upAt }] of this.spares) if (!socket.destroyed && now - upAt >= settle) yield upAt;
  }

  private cameUp(socket: Socket, startedAt: number, when: 'ahead' | 'on-path'): number {
    const upAt = this.options.now();
    this.upAt.set(socket, upAt);
    this.options.measurements.connected(upAt - startedAt, when);
    return upAt;
  }

  private keepSpare(socket: Socket, upAt: number): void {
    // An idle spare closes like an idle pooled connection: before the vendor closes it.
    const onTimeout = (): void => {
      socket.destroy();
    };
    const onClose = (): void => {
      this.spares.delete(socket);
      setImmediate(() => this.options.connectionClosed());
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
  }

  /** A connection the agent holds: when it closes, the pool may need a replacement. */
  private watched<T extends Duplex>(socket: T): T {
    socket.once('close', () => setImmediate(() => this.options.connectionClosed()));
    return socket;
  }
}
