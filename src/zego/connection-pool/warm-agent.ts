import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { IdleDeadline } from './sizing-policy.js';

/** What the agent asks of the pool. */
export interface WarmAgentHooks {
  /** A request is given to the agent, before it takes a connection. */
  requestAdded(request: http.ClientRequest): void;
  /** The agent needs a connection: a spare, or (`create`) a new one on the call's path. */
  connection(create: () => Duplex | null | undefined): Duplex | null | undefined;
  /** When the spare idle longest came up, if one is warm (past its hidden set-up). */
  oldestWarmSpareUpAt(): number | undefined;
}

/** Node's agent (http's or https's) with the pool's hooks in it. */
export interface WarmAgent extends http.Agent {
  /** Opens a connection as the agent would for a request (over https, with its TLS session cache). */
  connectAhead(): Duplex;
  /** Kept-alive connections the agent holds unused. */
  idleConnections(): number;
  /** When each of those will be closed for idling. */
  idleDeadlines(): IdleDeadline[];
  /** Connections carrying a request. */
  busyConnections(): number;
}

/**
 * The agent for the vendor at `url`: new connections come from the pool's spares first, requests
 * are timed by the pool and take connections in turn. It serves the vendor's origin only, so every
 * connection it keeps is one of the pool's.
 */
export function createWarmAgent(url: URL, options: https.AgentOptions, hooks: WarmAgentHooks, now: () => number): WarmAgent {
  const Agent = url.protocol === 'https:' ? WarmHttpsAgent : WarmHttpAgent;
  return new Agent(options, hooks, connectOptions(url), now);
}

/** When a connection to `url` is up: TCP's connect, or over https the end of the TLS handshake. */
export function readyEventOf(url: URL): 'connect' | 'secureConnect' {
  return url.protocol === 'https:' ? 'secureConnect' : 'connect';
}

type AgentConstructor = new (options: https.AgentOptions) => http.Agent;

/** Node's own, missing from its typings: takes an idle connection, or asks createConnection for one. */
type AddRequest = (this: http.Agent, request: http.ClientRequest, options: http.ClientRequestArgs) => void;

/** Opened ahead through Base's own createConnection, so https keeps its TLS session cache. */
function warmAgentOf(Base: AgentConstructor) {
  const baseAddRequest = (Base.prototype as unknown as { addRequest: AddRequest }).addRequest;
  return class extends Base implements WarmAgent {
    /** When each kept-alive connection last became idle. */
    private readonly freedAt = new WeakMap<Socket, number>();

    constructor(
      options: https.AgentOptions,
      private readonly hooks: WarmAgentHooks,
      private readonly connectTo: http.ClientRequestArgs,
      now: () => number,
    ) {
      super(options);
      this.on('free', (socket: Socket) => this.freedAt.set(socket, now()));
    }

    override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void) {
      return this.hooks.connection(() => super.createConnection(options, callback));
    }

    connectAhead(): Duplex {
      return super.createConnection(connectionOptions(this, this.connectTo))!;
    }

    addRequest(request: http.ClientRequest, options: http.ClientRequestArgs): void {
      this.hooks.requestAdded(request);
      this.addRequestInTurn(request, options);
    }

    idleConnections(): number {
      let idle = 0;
      for (const _ of this.idleSockets()) idle++;
      return idle;
    }

    idleDeadlines(): IdleDeadline[] {
      const deadlines: IdleDeadline[] = [];
      for (const socket of this.idleSockets()) {
        // Node's agent sets the idle timeout as it frees a connection: its own, or the vendor's hint less a buffer.
        const freedAt = this.freedAt.get(socket);
        const idleMs = socket.timeout ?? 0;
        if (freedAt !== undefined && idleMs > 0) deadlines.push({ closesAt: freedAt + idleMs, usableFrom: freedAt });
      }
      return deadlines;
    }

    private *idleSockets(): Generator<Socket> {
      for (const sockets of Object.values(this.freeSockets)) {
        for (const socket of sockets ?? []) if (!socket.destroyed) yield socket;
      }
    }

    busyConnections(): number {
      let busy = 0;
      for (const sockets of Object.values(this.sockets)) busy += (sockets ?? []).length;
      return busy;
    }

    /**
     * Hands the request to Node's agent, which takes its longest-idle kept-alive connection, or asks
     * createConnection (a spare) when it has none. When a spare has been idle longer, the agent's
     * idle list is hidden for that one request, so it asks for a connection and gets the spare.
     */
    private addRequestInTurn(request: http.ClientRequest, options: http.ClientRequestArgs): void {
      const free = this.freeSockets as Record<string, Socket[] | undefined>;
      const names = Object.keys(free);
      const name = names.length === 1 ? names[0] : undefined;
      const idle = name === undefined ? undefined : free[name];
      if (names.length > 1 || !this.preferSpare(idle?.[0])) {
        baseAddRequest.call(this, request, options);
        return;
      }
      if (name !== undefined && idle) delete free[name];
      try {
        baseAddRequest.call(this, request, options);
      } finally {
        if (name !== undefined && idle) free[name] = [...idle, ...(free[name] ?? [])];
      }
    }

    /**
     * Whether the next request should take a spare rather than the agent's longest-idle connection:
     * when the spare has been idle longer. Every connection then carries calls in turn, so spares
     * do not idle out unused while kept-alive ones carry everything.
     */
    private preferSpare(longestIdle: Socket | undefined): boolean {
      const oldestWarmSpare = this.hooks.oldestWarmSpareUpAt();
      if (oldestWarmSpare === undefined) return false;
      if (longestIdle === undefined) return true;
      return oldestWarmSpare < (this.freedAt.get(longestIdle) ?? Number.POSITIVE_INFINITY);
    }
  };
}

const WarmHttpAgent = warmAgentOf(http.Agent);
const WarmHttpsAgent = warmAgentOf(https.Agent);

/** Where the agent would connect for a request to `url`. */
function connectOptions(url: URL): http.ClientRequestArgs & { servername?: string } {
  const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { host, port, ...(url.protocol === 'https:' && isHostName(host) && { servername: host }) };
}

/** The options the agent itself would connect with (its own merged in, its key for the session cache). */
function connectionOptions(agent: http.Agent, connectTo: http.ClientRequestArgs): http.ClientRequestArgs {
  const options = { ...connectTo, ...(agent as unknown as { options: object }).options } as http.ClientRequestArgs & {
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
