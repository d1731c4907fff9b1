/**
 * A fake of the ZEGOCLOUD ZIM server API (only `CreateRoom` today) that behaves as the vendor
 * documents it (see /work/shared/reference/zim-createroom.md and zim-server-api-facts.md), plus
 * on-demand faults, a network-like answer time and connection lifetime, and a recording of every
 * call, so gateway tests can assert what reached the vendor's door and on which connection.
 * Node built-ins only, so it also runs as a standalone process (see main.ts).
 *
 * Decisions where the vendor's pages are silent (stricter is better for a fake: it catches
 * gateway bugs early):
 * - `AppId` must be canonical decimal (no sign, no leading zeros) and fit in uint32.
 * - `Signature` must be exactly the lowercase hex md5; an uppercase one is a signature error.
 * - Optional body fields sent as `null` are parameter errors; absent (undefined) is fine.
 * - QPS: a call is counted (at its arrival, with a monotonic clock) once it passed the
 *   authentication checks, whatever is answered afterwards (bad JSON, QPS refusal, parameter
 *   error, or an injected fault): the vendor saw it. A call is refused when the counted calls in
 *   the window ending at its arrival, itself included, exceed `qpsLimit`.
 * - Faults are taken from the queue at arrival (FIFO per call), applied after recording and QPS
 *   counting and before any answer, so they also replace authentication errors (they model the
 *   vendor's infrastructure failing). `delay` waits, then runs the normal path;
 *   `resetAfterCreate` runs it (the room is created) and resets the connection instead of answering.
 * - Only `POST /` is the vendor endpoint; other methods on `/` are recorded and answered 405;
 *   other paths outside `/_fake/` get 404 and are not recorded.
 *
 * The network between gateway and vendor (what a pool of warm vendor connections has to live with):
 * - Answer time (`answerTimeMs`): the vendor's processing plus the round trip, drawn per call
 *   uniformly in [minMs, maxMs] at arrival and waited after recording, QPS counting and reading
 *   the body, before the fault or the normal answer; the vendor acts (creates the room) at its
 *   end. A `delay` fault waits on top of it. Changing it affects the calls that arrive afterwards.
 * - Idle keep-alive timeout (`keepAliveTimeoutMs`): the vendor's (or its load balancer's) closing
 *   of idle connections, which kills pooled sockets under a client. Node's
 *   `server.keepAliveTimeout`, announced as `Keep-Alive: timeout=<whole seconds, rounded down>`;
 *   Node 20 closes the idle socket a fixed 1000 ms after that (its margin against a client reusing
 *   it as it closes). A change applies from each connection's next answer on. Node's own
 *   http.Agent does not reuse a socket announced with `timeout=0` or `timeout=1` (below 2000 ms).
 * - Connections: every connection (for HTTPS: every completed TLS handshake) gets an id in the
 *   order they open, control API ones included; every request on it is counted, so a call's
 *   record tells whether it came on a fresh or a reused connection, and for TLS whether the
 *   session was resumed (an abbreviated handshake). reset() leaves these counts alone.
 * - HTTPS (`tls`): the vendor serves HTTPS only. Node's server issues session tickets by default,
 *   so a client that keeps its session resumes it. The control API is on the same server.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { EventLoopStallWatch } from './event-loop-stalls.js';

export interface FakeZimOptions {
  appId: number;
  serverSecret: string;
  /** Calls allowed per window (vendor: 20/s for CreateRoom). Default 20. */
  qpsLimit?: number;
  /** Length of the QPS window in ms. Default 1000. */
  qpsWindowMs?: number;
  /** Rooms this app may create in total. Default Infinity. */
  roomQuota?: number;
  /** Allowed |now - Timestamp| in seconds. Default 600 (vendor: 10 minutes). */
  timestampToleranceSec?: number;
  /** Users in "registered status"; 'any' accepts every FromUserId. Default 'any'. */
  registeredUsers?: string[] | 'any';
  /** Maximum attributes per room. Default 20 (the CreateRoom page). */
  maxAttributes?: number;
  /** How long every vendor call waits before it is answered. Default: none (answers at once). */
  answerTimeMs?: AnswerTimeRange;
  /**
   * Idle time announced for keep-alive connections (`server.keepAliveTimeout`; Node closes them a
   * second later). Default: Node's (5000).
   */
  keepAliveTimeoutMs?: number;
  /** Serve HTTPS with this certificate and key (PEM). Default: plain HTTP. */
  tls?: { cert: string; key: string };
  /**
   * Watch this process's event loop for stalls while listening (GET /_fake/stalls). Default off:
   * in a test's own process the loop is the test's; the fake as its own process (main.ts) sets it.
   */
  watchEventLoop?: boolean;
}

/** Bounds (ms) of the uniformly random time a vendor call waits before it is answered. */
export interface AnswerTimeRange {
  minMs: number;
  maxMs: number;
}

/** The connections the server accepted (for HTTPS: completed the TLS handshake on). */
export interface ConnectionCounts {
  opened: number;
  open: number;
  /** Connections whose TLS session was resumed; null over plain HTTP. */
  tlsSessionsReused: number | null;
}

export type FaultKind =
  | 'http500'
  | 'html503'
  | 'reset'
  | 'resetAfterCreate'
  | 'garbage'
  | 'truncatedJson'
  | 'wrongContentType'
  | 'hang'
  | 'delay'
  | 'code';

export interface FaultSpec {
  kind: FaultKind;
  /** How many upcoming calls this fault applies to. Default Infinity (until clearFaults()). */
  times?: number;
  /** For 'delay': wait this long, then answer normally. */
  delayMs?: number;
  /** For 'code': answer HTTP 200 `{Code: code, ...}` without creating anything. */
  code?: number;
}

export interface ReceivedCall {
  /** Date.now() when the request arrived (ms). */
  at: number;
  /** performance.now() when the request arrived (ms, monotonic). */
  atHr: number;
  method: string;
  action: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  rawBody: string;
  /** Parsed JSON body, or undefined when it was not valid JSON. */
  body: unknown;
  /** The `Code` answered; null while pending, and for answers that carried no JSON Code. */
  code: number | null;
  fault: FaultKind | null;
  /** Id of the connection it came on: 1, 2, ... in the order the server's connections opened. */
  connection: number;
  /** Its place among the requests on that connection (1: the first), control requests included. */
  requestOnConnection: number;
  /** Whether that connection's TLS session was resumed; null over plain HTTP. */
  tlsSessionReused: boolean | null;
  /** The answer time drawn for this call (ms after arrival); null when none was set. */
  answerTimeMs: number | null;
}

/** Vendor return codes used by the fake. */
export const ZimCode = {
  success: 0,
  paramInput: 2,
  authFailed: 3,
  appIdFormat: 100000001,
  timestampEmpty: 100000002,
  timestampFormat: 100000003,
  signatureExpired: 100000004,
  signatureError: 100000005,
  actionEmpty: 100000006,
  actionUnsupported: 100000007,
  nonceEmpty: 100000008,
  signatureEmpty: 100000009,
  bodyUnreadable: 100000012,
  signatureVersionEmpty: 100000013,
  signatureVersionUnsupported: 100000014,
  parameterError: 660000002,
  frequencyLimit: 660300005,
  roomExists: 660300014,
  roomQuotaExceeded: 660300015,
  userNotRegistered: 660500002,
} as const;

const MESSAGES: Record<number, string> = {
  [ZimCode.success]: 'success',
  [ZimCode.paramInput]: 'input parameter error',
  [ZimCode.authFailed]: 'authentication failed',
  [ZimCode.appIdFormat]: 'AppId format error',
  [ZimCode.timestampEmpty]: 'Timestamp is empty',
  [ZimCode.timestampFormat]: 'Timestamp format error',
  [ZimCode.signatureExpired]: 'signature expired',
  [ZimCode.signatureError]: 'signature error',
  [ZimCode.actionEmpty]: 'Action is empty',
  [ZimCode.actionUnsupported]: 'Action not supported',
  [ZimCode.nonceEmpty]: 'SignatureNonce is empty',
  [ZimCode.signatureEmpty]: 'Signature is empty',
  [ZimCode.bodyUnreadable]: 'failed to read the HTTP body',
  [ZimCode.signatureVersionEmpty]: 'SignatureVersion is empty',
  [ZimCode.signatureVersionUnsupported]: 'SignatureVersion not supported',
  [ZimCode.parameterError]: 'Parameter error',
  [ZimCode.frequencyLimit]: 'Frequency limit',
  [ZimCode.roomExists]: 'room already exists',
  [ZimCode.roomQuotaExceeded]: 'number of rooms exceeds the limit',
  [ZimCode.userNotRegistered]: 'user not registered',
};

const FAULT_KINDS: readonly FaultKind[] = [
  'http500',
  'html503',
  'reset',
  'resetAfterCreate',
  'garbage',
  'truncatedJson',
  'wrongContentType',
  'hang',
  'delay',
  'code',
];

/** Signature v2.0: md5 of the four values concatenated as strings, lowercase hex. */
export function zimSignature(
  appId: number | string,
  nonce: string,
  serverSecret: string,
  timestamp: number | string,
): string {
  return createHash('md5').update(`${appId}${nonce}${serverSecret}${timestamp}`, 'utf8').digest('hex');
}

/** Throws when a fault spec (e.g. one received as JSON) is malformed. */
export function assertFaultSpec(value: unknown): asserts value is FaultSpec {
  if (!isPlainObject(value)) throw new Error('fault must be an object');
  const { kind, times, delayMs, code } = value;
  if (typeof kind !== 'string' || !FAULT_KINDS.includes(kind as FaultKind)) {
    throw new Error(`fault.kind must be one of ${FAULT_KINDS.join(', ')}`);
  }
  // null is accepted for times because JSON cannot express Infinity.
  if (times !== undefined && times !== null && !(typeof times === 'number' && times >= 1 && (Number.isInteger(times) || times === Infinity))) {
    throw new Error('fault.times must be a positive integer');
  }
  if (kind === 'delay' && !(typeof delayMs === 'number' && Number.isFinite(delayMs) && delayMs >= 0)) {
    throw new Error('fault.delayMs must be a non-negative number for kind delay');
  }
  if (kind === 'code' && !(typeof code === 'number' && Number.isInteger(code))) {
    throw new Error('fault.code must be an integer for kind code');
  }
}

/** The longest delay setTimeout honours (ms); longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

function isTimerMs(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_TIMER_MS;
}

/** Throws when an answer time range (e.g. one received as JSON) is malformed. */
export function assertAnswerTimeRange(value: unknown): asserts value is AnswerTimeRange {
  if (!isPlainObject(value)) throw new Error('answer time must be an object {minMs, maxMs}');
  const { minMs, maxMs } = value;
  if (!isTimerMs(minMs) || !isTimerMs(maxMs) || minMs > maxMs) {
    throw new Error(`answer time minMs and maxMs must be numbers with 0 <= minMs <= maxMs <= ${MAX_TIMER_MS}`);
  }
}

/** Throws unless `value` is a keep-alive timeout Node accepts (0 turns the timeout off). */
export function assertKeepAliveTimeout(value: unknown): asserts value is number {
  if (!(isTimerMs(value) && Number.isInteger(value))) {
    throw new Error(`keep-alive timeoutMs must be an integer between 0 and ${MAX_TIMER_MS}`);
  }
}

interface QueuedFault {
  spec: FaultSpec;
  remaining: number;
}

/** What the server knows of one connection. */
interface ConnectionRecord {
  id: number;
  requests: number;
  tlsSessionReused: boolean | null;
  /** The TCP socket under it (for TLS, the one under the TLSSocket): only that one can send a reset. */
  tcpSocket: Socket;
}

/** Where a request came from (see ReceivedCall). */
type RequestOrigin = Pick<ReceivedCall, 'connection' | 'requestOnConnection' | 'tlsSessionReused'>;

/** What the vendor would decide about a call from its query alone, at arrival. */
interface ArrivalVerdict {
  /** Authentication/public-parameter error code, or null when the call passed. */
  authCode: number | null;
  /** True when the call, counted, pushed the window over the QPS limit. */
  overQps: boolean;
}

const BODY_LIMIT_BYTES = 1024 * 1024;
const ID_PATTERN = /^[0-9A-Za-z!#$%&()+\-:;<=.>?@[\]^_ ,{]{1,32}$/;
const APP_ID_PATTERN = /^(0|[1-9][0-9]{0,9})$/;
const INTEGER_PATTERN = /^-?[0-9]{1,19}$/;
const NONCE_PATTERN = /^[0-9a-fA-F]{16}$/;
const UINT32_MAX = 0xffffffff;

export class FakeZimServer {
  private readonly appId: number;
  private readonly serverSecret: string;
  private readonly qpsLimit: number;
  private readonly qpsWindowMs: number;
  private readonly roomQuota: number;
  private readonly timestampToleranceSec: number;
  private readonly registeredUsers: ReadonlySet<string> | 'any';
  private readonly maxAttributes: number;
  private readonly tls: { cert: string; key: string } | null;
  private answerTime: AnswerTimeRange | null = null;
  /** Undefined: Node's default. */
  private keepAliveTimeout: number | undefined;

  private server: Server | HttpsServer | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly connectionRecords = new WeakMap<Socket, ConnectionRecord>();
  /** TLS only: TCP sockets by peer address, until their TLS handshake completes. */
  private readonly tcpSocketsByPeer = new Map<string, Socket>();
  private connectionsOpened = 0;
  private connectionsOpen = 0;
  private tlsSessionsReused = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly received: ReceivedCall[] = [];
  private readonly rooms = new Set<string>();
  /** Monotonic arrival times of counted calls, ascending; pruned to the window. */
  private qpsHistory: number[] = [];
  private faults: QueuedFault[] = [];
  private readonly stallWatch = new EventLoopStallWatch();
  private readonly watchEventLoop: boolean;

  constructor(options: FakeZimOptions) {
    this.watchEventLoop = options.watchEventLoop ?? false;
    this.appId = options.appId;
    this.serverSecret = options.serverSecret;
    this.qpsLimit = options.qpsLimit ?? 20;
    this.qpsWindowMs = options.qpsWindowMs ?? 1000;
    this.roomQuota = options.roomQuota ?? Infinity;
    this.timestampToleranceSec = options.timestampToleranceSec ?? 600;
    const users = options.registeredUsers ?? 'any';
    this.registeredUsers = users === 'any' ? 'any' : new Set(users);
    this.maxAttributes = options.maxAttributes ?? 20;
    this.tls = options.tls ? { cert: options.tls.cert, key: options.tls.key } : null;
    if (options.answerTimeMs) this.setAnswerTime(options.answerTimeMs);
    if (options.keepAliveTimeoutMs !== undefined) this.setKeepAliveTimeout(options.keepAliveTimeoutMs);
  }

  // ---------------------------------------------------------------- lifecycle

  start(port = 0, host = '127.0.0.1'): Promise<void> {
    if (this.server) return Promise.reject(new Error('FakeZimServer already started'));
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.route(req, res);
    const server = this.tls ? createHttpsServer({ ...this.tls }, handler) : createServer(handler);
    if (this.keepAliveTimeout !== undefined) server.keepAliveTimeout = this.keepAliveTimeout;
    server.on('connection', (socket: Socket) => {
      this.trackSocket(socket);
      if (this.tls) this.awaitHandshake(socket);
    });
    // A TLS connection carries requests once its handshake is done, on a TLSSocket of its own.
    server.on(this.tls ? 'secureConnection' : 'connection', (socket: Socket) => this.openConnection(socket));
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        this.server = server;
        if (this.watchEventLoop) this.stallWatch.start();
        resolve();
      });
    });
  }

  /** Closes the listener and every socket, including hanging and keep-alive ones. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    this.stallWatch.stop();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }

  get port(): number {
    const address = this.server?.address();
    if (!address || typeof address === 'string') throw new Error('FakeZimServer is not listening');
    return (address as AddressInfo).port;
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('FakeZimServer is not listening');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `${this.tls ? 'https' : 'http'}://${host}:${address.port}`;
  }

  private trackSocket(socket: Socket): void {
    if (this.sockets.has(socket)) return;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private awaitHandshake(tcpSocket: Socket): void {
    const peer = peerAddress(tcpSocket);
    this.tcpSocketsByPeer.set(peer, tcpSocket);
    tcpSocket.on('close', () => {
      if (this.tcpSocketsByPeer.get(peer) === tcpSocket) this.tcpSocketsByPeer.delete(peer);
    });
  }

  private openConnection(socket: Socket): void {
    this.trackSocket(socket);
    let tcpSocket = socket;
    let tlsSessionReused: boolean | null = null;
    if (socket instanceof TLSSocket) {
      // Node offers no public link from a TLSSocket to its TCP socket; the peer address is one.
      const peer = peerAddress(socket);
      tcpSocket = this.tcpSocketsByPeer.get(peer) ?? socket;
      this.tcpSocketsByPeer.delete(peer);
      tlsSessionReused = socket.isSessionReused();
      if (tlsSessionReused) this.tlsSessionsReused += 1;
    }
    this.connectionRecords.set(socket, { id: ++this.connectionsOpened, requests: 0, tlsSessionReused, tcpSocket });
    this.connectionsOpen += 1;
    socket.on('close', () => {
      this.connectionsOpen -= 1;
    });
  }

  /** Counts the request on its connection and says where it came from. */
  private noteRequest(req: IncomingMessage): RequestOrigin {
    // Set on 'connection' (or 'secureConnection'), which comes before any request on the socket.
    const record = this.connectionRecords.get(req.socket)!;
    record.requests += 1;
    return { connection: record.id, requestOnConnection: record.requests, tlsSessionReused: record.tlsSessionReused };
  }

  // ---------------------------------------------------------------- state

  get calls(): ReceivedCall[] {
    return [...this.received];
  }

  get createdRooms(): string[] {
    return [...this.rooms];
  }

  get connections(): ConnectionCounts {
    return {
      opened: this.connectionsOpened,
      open: this.connectionsOpen,
      tlsSessionsReused: this.tls ? this.tlsSessionsReused : null,
    };
  }

  /** Clears calls, rooms, QPS history and faults; the answer time, keep-alive and connection counts stay. */
  reset(): void {
    this.received.length = 0;
    this.rooms.clear();
    this.qpsHistory = [];
    this.faults = [];
  }

  /** Queues a fault; faults apply in FIFO order, one per upcoming call, `times` calls each. */
  injectFault(fault: FaultSpec): void {
    assertFaultSpec(fault);
    this.faults.push({ spec: { ...fault }, remaining: fault.times ?? Infinity });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** The queued faults with their remaining counts (for the control API and debugging). */
  get pendingFaults(): FaultSpec[] {
    return this.faults.map((f) => ({ ...f.spec, times: f.remaining }));
  }

  /** Sets the answer time for the calls that arrive from now on; null answers at once. */
  setAnswerTime(range: AnswerTimeRange | null): void {
    if (range === null) {
      this.answerTime = null;
      return;
    }
    assertAnswerTimeRange(range);
    this.answerTime = { minMs: range.minMs, maxMs: range.maxMs };
  }

  get answerTimeMs(): AnswerTimeRange | null {
    return this.answerTime ? { ...this.answerTime } : null;
  }

  /** Sets the idle keep-alive timeout (0: never close idle connections); each connection's next answer on. */
  setKeepAliveTimeout(ms: number): void {
    assertKeepAliveTimeout(ms);
    this.keepAliveTimeout = ms;
    if (this.server) this.server.keepAliveTimeout = ms;
  }

  /** The idle keep-alive timeout in effect (ms). */
  get keepAliveTimeoutMs(): number {
    if (!this.server) throw new Error('FakeZimServer is not listening');
    return this.server.keepAliveTimeout;
  }

  // ---------------------------------------------------------------- routing

  private route(req: IncomingMessage, res: ServerResponse): void {
    const origin = this.noteRequest(req);
    const url = new URL(req.url ?? '/', 'http://fake-zim.invalid');
    if (url.pathname === '/_fake' || url.pathname.startsWith('/_fake/')) {
      void this.handleControl(req, res, url).catch((err: unknown) => this.internalError(res, err));
      return;
    }
    if (url.pathname !== '/') {
      sendJson(res, 404, { error: 'not found' });
      return;
    }
    void this.handleVendor(req, res, url, origin).catch((err: unknown) => this.internalError(res, err));
  }

  private internalError(res: ServerResponse, err: unknown): void {
    if (res.headersSent || res.destroyed) return;
    sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
  }

  // ---------------------------------------------------------------- vendor endpoint

  private async handleVendor(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    origin: RequestOrigin,
  ): Promise<void> {
    // Everything that must reflect arrival order happens synchronously here, before any await.
    const query = firstValues(url.searchParams);
    const call: ReceivedCall = {
      at: Date.now(),
      atHr: performance.now(),
      method: req.method ?? '',
      action: query.Action ?? '',
      query,
      headers: req.headers,
      rawBody: '',
      body: undefined,
      code: null,
      fault: null,
      ...origin,
      answerTimeMs: null,
    };
    this.received.push(call);

    if (req.method !== 'POST') {
      req.resume();
      res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'POST' });
      res.end('Method Not Allowed');
      return;
    }

    const verdict = this.judgeArrival(query, call.atHr);
    const fault = this.takeFault();
    if (fault) call.fault = fault.kind;
    call.answerTimeMs = this.drawAnswerTime();

    const body = await readBody(req, BODY_LIMIT_BYTES);
    call.rawBody = body.text;
    call.body = body.json;

    if (call.answerTimeMs !== null) {
      // Counted from arrival: reading the body is part of the answer time.
      await this.wait(Math.max(0, call.atHr + call.answerTimeMs - performance.now()));
      if (res.destroyed) return; // stopped or client gone meanwhile
    }
    if (fault && fault.kind !== 'delay' && fault.kind !== 'resetAfterCreate') {
      this.applyFault(fault, req, res, call);
      return;
    }
    if (fault?.kind === 'delay') {
      await this.wait(fault.delayMs ?? 0);
      if (res.destroyed) return; // stopped or client gone meanwhile
    }

    const answer = this.decide(verdict, body);
    call.code = answer.Code;
    // The vendor acted on the call, and the answer is lost on the way back.
    if (fault?.kind === 'resetAfterCreate') this.resetConnection(req);
    else sendJson(res, 200, answer);
  }

  /** Authentication checks in the vendor's order, then QPS counting for authenticated calls. */
  private judgeArrival(query: Record<string, string>, arrivalHr: number): ArrivalVerdict {
    const authCode = this.authenticate(query);
    if (authCode !== null) return { authCode, overQps: false };
    const history = this.qpsHistory;
    let start = 0;
    while (start < history.length && history[start] <= arrivalHr - this.qpsWindowMs) start++;
    if (start > 0) this.qpsHistory = history.slice(start);
    this.qpsHistory.push(arrivalHr);
    return { authCode: null, overQps: this.qpsHistory.length > this.qpsLimit };
  }

  private authenticate(q: Record<string, string>): number | null {
    const action = q.Action ?? '';
    if (action === '') return ZimCode.actionEmpty;
    if (action !== 'CreateRoom') return ZimCode.actionUnsupported;

    const appId = q.AppId ?? '';
    if (!APP_ID_PATTERN.test(appId) || Number(appId) > UINT32_MAX) return ZimCode.appIdFormat;
    if (Number(appId) !== this.appId) return ZimCode.authFailed;

    const timestamp = q.Timestamp ?? '';
    if (timestamp === '') return ZimCode.timestampEmpty;
    if (!INTEGER_PATTERN.test(timestamp)) return ZimCode.timestampFormat;
    const skewSec = Math.abs(Date.now() / 1000 - Number(timestamp));
    if (skewSec > this.timestampToleranceSec) return ZimCode.signatureExpired;

    const nonce = q.SignatureNonce ?? '';
    if (nonce === '') return ZimCode.nonceEmpty;
    if (!NONCE_PATTERN.test(nonce)) return ZimCode.paramInput;

    const signature = q.Signature ?? '';
    if (signature === '') return ZimCode.signatureEmpty;

    const version = q.SignatureVersion ?? '';
    if (version === '') return ZimCode.signatureVersionEmpty;
    if (version !== '2.0') return ZimCode.signatureVersionUnsupported;

    const expected = Buffer.from(zimSignature(appId, nonce, this.serverSecret, timestamp), 'utf8');
    const actual = Buffer.from(signature, 'utf8');
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return ZimCode.signatureError;
    return null;
  }

  /** Everything after authentication: body readability, QPS verdict, body rules, room state. */
  private decide(verdict: ArrivalVerdict, body: ReadBody): ZimAnswer {
    if (verdict.authCode !== null) return answer(verdict.authCode);
    if (!body.ok) return answer(ZimCode.bodyUnreadable);
    if (verdict.overQps) return answer(ZimCode.frequencyLimit);

    const request = parseCreateRoom(body.json, this.maxAttributes);
    if (!request) return answer(ZimCode.parameterError);
    if (this.registeredUsers !== 'any' && !this.registeredUsers.has(request.fromUserId)) {
      return answer(ZimCode.userNotRegistered);
    }
    if (this.rooms.has(request.roomId)) return answer(ZimCode.roomExists);
    if (this.rooms.size >= this.roomQuota) return answer(ZimCode.roomQuotaExceeded);

    this.rooms.add(request.roomId);
    // One change per attribute created (the vendor's AttributeSeq counts changes).
    return { ...answer(ZimCode.success), AttributeSeq: request.attributeCount };
  }

  /** A uniformly random time in the answer time range, or null when none is set. */
  private drawAnswerTime(): number | null {
    if (!this.answerTime) return null;
    const { minMs, maxMs } = this.answerTime;
    return minMs + Math.random() * (maxMs - minMs);
  }

  // ---------------------------------------------------------------- faults

  private takeFault(): FaultSpec | null {
    const head = this.faults[0];
    if (!head) return null;
    head.remaining -= 1;
    if (head.remaining <= 0) this.faults.shift();
    return head.spec;
  }

  private applyFault(fault: FaultSpec, req: IncomingMessage, res: ServerResponse, call: ReceivedCall): void {
    switch (fault.kind) {
      case 'http500':
        sendText(res, 500, 'text/plain; charset=utf-8', 'Internal Server Error');
        return;
      case 'html503':
        sendText(
          res,
          503,
          'text/html; charset=utf-8',
          '<html><head><title>503 Service Temporarily Unavailable</title></head>' +
            '<body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>',
        );
        return;
      case 'reset':
        this.resetConnection(req);
        return;
      case 'garbage':
        // Labelled as JSON on purpose: clients must not trust the content type alone.
        sendText(res, 200, 'application/json; charset=utf-8', '<<not json>>');
        return;
      case 'truncatedJson':
        sendText(res, 200, 'application/json; charset=utf-8', '{"Code":0,"Mess');
        return;
      case 'wrongContentType':
        sendText(res, 200, 'text/plain; charset=utf-8', 'OK');
        return;
      case 'hang':
        // Never answer; stop() or the client's timeout ends the socket.
        return;
      case 'code': {
        const code = fault.code ?? 1;
        call.code = code;
        sendJson(res, 200, { Code: code, Message: MESSAGES[code] ?? 'injected fault', RequestId: newRequestId() });
        return;
      }
      case 'delay':
      case 'resetAfterCreate':
        throw new Error(`${fault.kind} is applied around the normal answer`);
    }
  }

  /** A TCP RST where the platform allows it, a plain close otherwise. */
  private resetConnection(req: IncomingMessage): void {
    const tcpSocket = this.connectionRecords.get(req.socket)?.tcpSocket ?? req.socket;
    if (typeof tcpSocket.resetAndDestroy === 'function') tcpSocket.resetAndDestroy();
    else tcpSocket.destroy();
    if (tcpSocket !== req.socket) req.socket.destroy();
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }

  // ---------------------------------------------------------------- control API

  private async handleControl(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const route = `${req.method ?? ''} ${url.pathname}`;
    const body = await readBody(req, BODY_LIMIT_BYTES);
    switch (route) {
      case 'GET /_fake/health':
        sendJson(res, 200, { ok: true, appId: this.appId });
        return;
      case 'GET /_fake/calls':
        sendJson(res, 200, this.received);
        return;
      case 'GET /_fake/rooms':
        sendJson(res, 200, [...this.rooms]);
        return;
      case 'POST /_fake/reset':
        this.reset();
        sendJson(res, 200, { ok: true });
        return;
      case 'GET /_fake/faults':
        // Infinity is not JSON: it goes out as null, the same way it comes in.
        sendJson(res, 200, this.pendingFaults.map((f) => ({ ...f, times: f.times === Infinity ? null : f.times })));
        return;
      case 'POST /_fake/faults': {
        if (!body.ok) {
          sendJson(res, 400, { error: 'body must be a JSON FaultSpec or an array of them' });
          return;
        }
        const specs: unknown[] = Array.isArray(body.json) ? body.json : [body.json];
        try {
          specs.forEach((spec) => assertFaultSpec(spec));
        } catch (err) {
          sendJson(res, 400, { error: (err as Error).message });
          return;
        }
        for (const spec of specs as FaultSpec[]) {
          this.injectFault({ ...spec, times: spec.times ?? undefined });
        }
        sendJson(res, 200, { ok: true, queued: specs.length });
        return;
      }
      case 'DELETE /_fake/faults':
        this.clearFaults();
        sendJson(res, 200, { ok: true });
        return;
      case 'GET /_fake/answer-time':
        sendJson(res, 200, this.answerTimeMs);
        return;
      case 'PUT /_fake/answer-time': {
        if (!body.ok) {
          sendJson(res, 400, { error: 'body must be JSON {minMs, maxMs}, or {} or null to answer at once' });
          return;
        }
        // {} and null clear it, like leaving the option out.
        const cleared = body.json === null || (isPlainObject(body.json) && Object.keys(body.json).length === 0);
        try {
          this.setAnswerTime(cleared ? null : (body.json as AnswerTimeRange));
        } catch (err) {
          sendJson(res, 400, { error: (err as Error).message });
          return;
        }
        sendJson(res, 200, { ok: true, answerTimeMs: this.answerTimeMs });
        return;
      }
      case 'GET /_fake/keep-alive':
        sendJson(res, 200, { timeoutMs: this.keepAliveTimeoutMs });
        return;
      case 'PUT /_fake/keep-alive': {
        const timeoutMs = body.ok && isPlainObject(body.json) ? body.json.timeoutMs : undefined;
        try {
          this.setKeepAliveTimeout(timeoutMs as number);
        } catch (err) {
          sendJson(res, 400, { error: `body must be JSON {timeoutMs}: ${(err as Error).message}` });
          return;
        }
        sendJson(res, 200, { ok: true, timeoutMs: this.keepAliveTimeoutMs });
        return;
      }
      case 'GET /_fake/connections':
        sendJson(res, 200, this.connections);
        return;
      case 'GET /_fake/stalls':
        sendJson(res, 200, this.stallWatch.report());
        return;
      default:
        sendJson(res, 404, { error: `no control route ${route}` });
    }
  }
}

// ------------------------------------------------------------------ helpers

interface ZimAnswer {
  Code: number;
  Message: string;
  RequestId: string;
  AttributeSeq?: number;
}

function answer(code: number): ZimAnswer {
  return { Code: code, Message: MESSAGES[code] ?? 'error', RequestId: newRequestId() };
}

/** Fresh and unique per call, like the vendor's. */
function newRequestId(): string {
  return randomUUID().replace(/-/g, '');
}

interface ReadBody {
  text: string;
  /** False when the body is too large or not valid JSON. */
  ok: boolean;
  json: unknown;
}

/** Reads the whole body (kept up to `limit` bytes) and parses it as JSON. */
function readBody(req: IncomingMessage, limit: number): Promise<ReadBody> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    const finish = (): void => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (tooLarge) return resolve({ text, ok: false, json: undefined });
      try {
        resolve({ text, ok: true, json: JSON.parse(text) as unknown });
      } catch {
        resolve({ text, ok: false, json: undefined });
      }
    };
    req.on('end', finish);
    // An aborted request still resolves, so the handler can notice the dead socket.
    req.on('error', finish);
    req.on('close', () => {
      if (!req.complete) finish();
    });
  });
}

function firstValues(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of params) if (!(key in out)) out[key] = value;
  return out;
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  sendText(res, status, 'application/json; charset=utf-8', JSON.stringify(payload));
}

function sendText(res: ServerResponse, status: number, contentType: string, text: string): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

interface CreateRoomRequest {
  fromUserId: string;
  roomId: string;
  attributeCount: number;
}

/** The CreateRoom body rules; null on any violation (the vendor answers 660000002). */
function parseCreateRoom(body: unknown, maxAttributes: number): CreateRoomRequest | null {
  if (!isPlainObject(body)) return null;
  const { FromUserId, RoomId, RoomName, DestroyDelayTime, Attributes } = body;
  if (typeof FromUserId !== 'string' || !ID_PATTERN.test(FromUserId)) return null;
  if (typeof RoomId !== 'string' || !ID_PATTERN.test(RoomId)) return null;
  if (RoomName !== undefined && (typeof RoomName !== 'string' || utf8Bytes(RoomName) > 64)) return null;
  if (
    DestroyDelayTime !== undefined &&
    !(typeof DestroyDelayTime === 'number' && Number.isInteger(DestroyDelayTime) && DestroyDelayTime >= 0 && DestroyDelayTime <= 10800)
  ) {
    return null;
  }
  let attributeCount = 0;
  if (Attributes !== undefined) {
    if (!Array.isArray(Attributes) || Attributes.length > maxAttributes) return null;
    const keys = new Set<string>();
    let totalBytes = 0;
    for (const attribute of Attributes as unknown[]) {
      if (!isPlainObject(attribute)) return null;
      const { Key, Value, AutoDelete } = attribute;
      if (typeof Key !== 'string' || Key.length === 0 || utf8Bytes(Key) > 16) return null;
      if (typeof Value !== 'string' || utf8Bytes(Value) > 1024) return null;
      if (AutoDelete !== undefined && AutoDelete !== 0 && AutoDelete !== 1) return null;
      if (keys.has(Key)) return null;
      keys.add(Key);
      totalBytes += utf8Bytes(Key) + utf8Bytes(Value);
    }
    if (totalBytes > 5120) return null;
    attributeCount = Attributes.length;
  }
  return { fromUserId: FromUserId, roomId: RoomId, attributeCount };
}

function peerAddress(socket: Socket): string {
  return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? ''}`;
}
