/**
 * A fleet on one machine, for the multi-replica tests and the limiter benchmark: the fake ZIM
 * vendor as its own process, several real gateway processes (`dist/main.js`, or another entry),
 * and a load of concurrent callers spread over them. Figures come from what the fake vendor
 * recorded at its door, not from what the gateways believe they sent.
 *
 * The fake runs in its own process (not in the test's) so that the callers' work cannot delay
 * the fake's record of arrival times.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventLoopStallReport } from '../fake-zim/event-loop-stalls.js';
import { ZimCode, type AnswerTimeRange, type ConnectionCounts } from '../fake-zim/fake-zim-server.js';
import { waitFor } from './async-probes.js';
import { maxCallsInAnyWindow } from './call-windows.js';
import { gatewayEnv } from './gateway-env.js';
import { startGateway, type GatewayProcess, type LogLine } from './gateway-process.js';
import { formatExchange } from './http-recorder.js';
import { metricSum, scrapeMetrics } from './prometheus-text.js';
import { recordEmission } from './secret-scan.js';

export const FLEET_APP_ID = 2718281828;
const FAKE_ZIM_SCRIPT = 'dist-dev/fake-zim/main.js';

/** What the fake recorded for one call (the fields the figures need). */
export interface VendorCall {
  /** Arrival, on the fake's wall clock (ms). */
  at: number;
  /** Arrival, on the fake's monotonic clock (ms): the one windows are measured on. */
  atHr: number;
  code: number | null;
  /** The JSON body the fake received (CreateRoom's `RoomId` tells whose call it was). */
  body?: unknown;
  /** The fake's id of the connection the call came on, its place on it (1: first), TLS resumption. */
  connection?: number;
  requestOnConnection?: number;
  tlsSessionReused?: boolean | null;
  /** The answer time the fake drew for the call (ms), null when none was set. */
  answerTimeMs?: number | null;
  /** The query string's parameters (SignatureNonce tells the call apart on the wire). */
  query?: Record<string, string>;
}

/** The room a vendor call asked for, or undefined when its body carried none. */
export function vendorCallRoomId(call: VendorCall): string | undefined {
  const body = call.body;
  if (typeof body !== 'object' || body === null) return undefined;
  const roomId = (body as { RoomId?: unknown }).RoomId;
  return typeof roomId === 'string' ? roomId : undefined;
}

export interface FakeZimProcess {
  /** `http://127.0.0.1:<port>`, or `https://` when started with `tls`. */
  readonly url: string;
  readonly process: GatewayProcess;
  calls(): Promise<VendorCall[]>;
  createdRooms(): Promise<string[]>;
  /** Every connection the fake accepted, this handle's own control connection included. */
  connections(): Promise<ConnectionCounts>;
  /** For the calls that arrive from now on; null answers at once. */
  setAnswerTime(range: AnswerTimeRange | null): Promise<void>;
  /** From each connection's next answer on; 0 never closes idle connections. */
  setKeepAliveTimeout(timeoutMs: number): Promise<void>;
  /** The stalls of the fake's event loop so far (its arrival stamps are late by as much). */
  stalls(): Promise<EventLoopStallReport>;
}

/** How the fake process behaves on the network (passed as its environment, see main.ts). */
export interface FakeZimProcessOptions {
  /** Entry point, relative to the repository root. Default dist-dev/fake-zim/main.js. */
  script?: string;
  /** FAKE_ZIM_ANSWER_MS (whole ms). Default: answers at once. */
  answerTimeMs?: AnswerTimeRange;
  /** FAKE_ZIM_KEEPALIVE_MS. Default: Node's. */
  keepAliveTimeoutMs?: number;
  /** FAKE_ZIM_TLS_CERT_FILE and FAKE_ZIM_TLS_KEY_FILE (e.g. from createTestCertificate()): serve HTTPS. */
  tls?: { certFile: string; keyFile: string };
}

/**
 * Starts the fake's entry (`dist-dev/fake-zim/main.js`, from `npm run build:dev`) on a free port.
 * The third argument is the options, or (as the benchmarks pass it) the script alone.
 */
export async function startFakeZimProcess(
  appId: number,
  secret: string,
  scriptOrOptions: string | FakeZimProcessOptions = {},
): Promise<FakeZimProcess> {
  const options = typeof scriptOrOptions === 'string' ? { script: scriptOrOptions } : scriptOrOptions;
  const env: Record<string, string> = { FAKE_ZIM_PORT: '0', ZEGO_APP_ID: String(appId), ZEGO_SERVER_SECRET: secret };
  if (options.answerTimeMs) {
    env.FAKE_ZIM_ANSWER_MS = `${options.answerTimeMs.minMs}-${options.answerTimeMs.maxMs}`;
  }
  if (options.keepAliveTimeoutMs !== undefined) env.FAKE_ZIM_KEEPALIVE_MS = String(options.keepAliveTimeoutMs);
  if (options.tls) {
    env.FAKE_ZIM_TLS_CERT_FILE = options.tls.certFile;
    env.FAKE_ZIM_TLS_KEY_FILE = options.tls.keyFile;
  }
  const child = await startGateway(env, { script: options.script ?? FAKE_ZIM_SCRIPT });
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${child.port}`;
  const control = controlClient(url, options.tls ? readFileSync(options.tls.certFile, 'utf8') : undefined);
  return {
    url,
    process: child,
    calls: () => control<VendorCall[]>('GET', '/_fake/calls'),
    createdRooms: () => control<string[]>('GET', '/_fake/rooms'),
    connections: () => control<ConnectionCounts>('GET', '/_fake/connections'),
    setAnswerTime: async (range) => {
      await control('PUT', '/_fake/answer-time', range);
    },
    setKeepAliveTimeout: async (timeoutMs) => {
      await control('PUT', '/_fake/keep-alive', { timeoutMs });
    },
    stalls: () => control<EventLoopStallReport>('GET', '/_fake/stalls'),
  };
}

type ControlRequest = <T>(method: string, path: string, body?: unknown) => Promise<T>;

/**
 * Requests to the fake's control API. Over HTTPS through node:https with the fake's certificate
 * as the CA (fetch takes no CA of its own without undici's dispatcher, not a dependency here),
 * reusing one connection while the fake's Keep-Alive lets Node's agent.
 */
function controlClient(baseUrl: string, ca: string | undefined): ControlRequest {
  const failure = (method: string, path: string, status: number): Error =>
    new Error(`fake ZIM ${method} ${path} answered ${status}`);
  if (ca === undefined) {
    return async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        ...(body === undefined ? {} : { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }),
      });
      if (!response.ok) throw failure(method, path, response.status);
      return (await response.json()) as T;
    };
  }
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca });
  return <T>(method: string, path: string, body?: unknown): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const request = httpsRequest(
        `${baseUrl}${path}`,
        { method, agent, headers: body === undefined ? {} : { 'Content-Type': 'application/json' } },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            if (status < 200 || status > 299) return reject(failure(method, path, status));
            try {
              resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
            } catch (error) {
              reject(error as Error);
            }
          });
        },
      );
      request.on('error', reject);
      request.end(body === undefined ? undefined : JSON.stringify(body));
    });
}

export interface FleetOptions {
  replicas: number;
  secret: string;
  /** client id → API key */
  clients: Record<string, string>;
  fakeUrl: string;
  /** Added to every replica's environment (REDIS_URL, limits, ...). */
  env?: Record<string, string>;
  /** Added to replica i's environment after `env` (e.g. one replica reaching Redis through a proxy). */
  envFor?: (index: number) => Record<string, string>;
  /** Gateway entry point relative to the repository root (default dist/main.js). */
  script?: string;
  /** Node's own options for every replica (the tracing preload, say). Default none. */
  nodeOptions?: string[];
}

export function startReplicas(options: FleetOptions): Promise<GatewayProcess[]> {
  const env = gatewayEnv(
    { appId: FLEET_APP_ID, secret: options.secret, vendorUrl: options.fakeUrl, apiKeys: options.clients },
    { ZEGO_DEFAULT_FROM_USER_ID: 'fleet-operator' },
    options.env,
  );
  return Promise.all(
    Array.from({ length: options.replicas }, (_, index) =>
      startGateway({ ...env, ...options.envFor?.(index) }, { script: options.script, nodeOptions: options.nodeOptions, startTimeoutMs: 30_000 }),
    ),
  );
}

/**
 * Resolves with the replica's log line saying its outbound limiter entered `mode` (from log line
 * `since` on). A replica listens before its Redis connection is ready: tests that need the
 * shared limiter wait for this first.
 */
export function waitForLimiterMode(
  gateway: GatewayProcess,
  mode: 'shared' | 'local' | 'reject',
  options: { since?: number; timeoutMs?: number } = {},
): Promise<LogLine> {
  const line = `Outbound limiter mode: ${mode}`;
  return gateway.waitForLog((l) => typeof l.message === 'string' && l.message.startsWith(line), {
    timeoutMs: 10_000,
    ...options,
  });
}

/** Resolves once the replica logged `local` (from log line `since` on) and then `shared` again. */
export async function wentLocalAndBack(gateway: GatewayProcess, since: number): Promise<void> {
  const local = await waitForLimiterMode(gateway, 'local', { since });
  await backToShared(gateway, gateway.logLines().indexOf(local));
}

const MODE_LINE = /^Outbound limiter mode: (shared|local|reject)\b/;

/**
 * Resolves once the replica is back in shared mode for good: a `shared` line after the last
 * `local` or `reject` it logged (from line `since` on). While a Cluster has one primary down, the
 * stores on the other primaries still answer and the mode flaps (shared, then the budget's call
 * fails again), so the first `shared` after a fallback may come before Redis is whole again.
 */
export async function backToShared(gateway: GatewayProcess, since: number): Promise<LogLine> {
  const lines = gateway.logLines();
  let lastFallback = since - 1;
  lines.forEach((line, index) => {
    const mode = typeof line.message === 'string' ? MODE_LINE.exec(line.message)?.[1] : undefined;
    if (index >= since && (mode === 'local' || mode === 'reject')) lastFallback = index;
  });
  return waitForLimiterMode(gateway, 'shared', { since: lastFallback + 1 });
}

/** One change of the limiter's mode, as the replica logged it. */
export interface LimiterModeLine {
  mode: 'shared' | 'local' | 'reject';
  /** The whole message: `Outbound limiter mode: local (slow: ...)`. */
  message: string;
  /** When the replica logged it (its wall clock, ms), when the line carried one. */
  timestamp?: number;
}

/** The replica's changes of mode from log line `since` on, in order, with their messages (the reason in brackets). */
export function limiterModeLines(gateway: GatewayProcess, since = 0): LimiterModeLine[] {
  return gateway
    .logLines()
    .slice(since)
    .flatMap((line) => {
      const match = typeof line.message === 'string' ? MODE_LINE.exec(line.message) : null;
      if (!match) return [];
      const mode = match[1] as LimiterModeLine['mode'];
      return [{ mode, message: line.message as string, ...(typeof line.timestamp === 'number' && { timestamp: line.timestamp }) }];
    });
}

/** The modes the replica's limiter entered from log line `since` on, in order (from its log lines). */
export function limiterModeChanges(gateway: GatewayProcess, since = 0): Array<'shared' | 'local' | 'reject'> {
  return limiterModeLines(gateway, since).map((line) => line.mode);
}

/** Resolves once every replica's /metrics says its limiter is in shared mode (polled, with a deadline). */
export async function untilEveryReplicaShared(gateways: readonly GatewayProcess[], timeoutMs = 15_000): Promise<void> {
  await waitFor(
    async () => {
      const all = await Promise.all(gateways.map((g) => scrapeMetrics(g.url)));
      return all.every((samples) => metricSum(samples, 'zim_gateway_outbound_limiter_mode', { mode: 'shared' }) === 1);
    },
    // A scrape costs each replica some work: every 100 ms is plenty.
    { what: 'every replica in shared mode', timeoutMs, intervalMs: 100 },
  );
}

// ------------------------------------------------------------------ load

export interface Answer {
  caller: number;
  gateway: number;
  status: number;
  retryAfter: string | null;
  /** Wall clock when the request was sent (ms). */
  sentAt: number;
  latencyMs: number;
  /** Set when no HTTP answer came (connection error or the caller's own timeout). */
  error?: string;
  /** Kept for answers that are neither 201 nor 429, to explain a failure. */
  body?: string;
}

export interface LoadOptions {
  gateways: readonly GatewayProcess[];
  /** API keys; caller i uses keys[i % keys.length]. */
  keys: readonly string[];
  callers: number;
  durationMs: number;
  /** A caller gives up on a request after this long and records it as left hanging. */
  requestTimeoutMs: number;
  /** How long a caller pauses after a 429 before asking again (impatient callers ask early). */
  pauseAfterRefusalMs: () => number;
  roomPrefix: string;
}

export interface LoadResult {
  answers: Answer[];
  startedAt: number;
  /** When callers stopped sending new requests (answers to the last ones may still be on their way). */
  stoppedAt: number;
}

/** `callers` concurrent callers, each with one request in flight, caller i on gateway i % n. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const answers: Answer[] = [];
  const startedAt = Date.now();
  const stopAt = performance.now() + options.durationMs;
  const caller = async (index: number): Promise<void> => {
    const gatewayIndex = index % options.gateways.length;
    const gateway = options.gateways[gatewayIndex]!;
    const key = options.keys[index % options.keys.length]!;
    for (let n = 0; performance.now() < stopAt; n++) {
      const answer = await createRoom(gateway.url, key, `${options.roomPrefix}-${index}-${n}`, options.requestTimeoutMs);
      answers.push({ ...answer, caller: index, gateway: gatewayIndex });
      if (answer.status === 429) await sleep(options.pauseAfterRefusalMs());
    }
  };
  await Promise.all(Array.from({ length: options.callers }, (_, index) => caller(index)));
  return { answers, startedAt, stoppedAt: startedAt + options.durationMs };
}

/** One POST /rooms; `headers` are sent besides the API key and content type (e.g. X-Priority). */
export async function createRoom(
  gatewayUrl: string,
  key: string,
  roomId: string,
  timeoutMs: number,
  headers: Readonly<Record<string, string>> = {},
): Promise<Omit<Answer, 'caller' | 'gateway'>> {
  const sentAt = Date.now();
  const started = performance.now();
  try {
    const response = await fetch(`${gatewayUrl}/rooms`, {
      method: 'POST',
      headers: { ...headers, Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ roomId, roomName: 'fleet' }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    // For the whole-suite secret scan (a no-op unless ZIM_GW_EMISSIONS_DIR is set).
    const received: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      received[name] = value;
    });
    recordEmission(
      'http',
      `${formatExchange({ method: 'POST', url: `${gatewayUrl}/rooms`, status: response.status, headers: received, text })}\n\n`,
    );
    const expected = response.status === 201 || response.status === 429;
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      sentAt,
      latencyMs: performance.now() - started,
      ...(expected ? {} : { body: text.slice(0, 500) }),
    };
  } catch (error) {
    return {
      status: 0,
      retryAfter: null,
      sentAt,
      latencyMs: performance.now() - started,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    };
  }
}

/**
 * Calls through every replica until their code paths are warm (JIT-compiled, vendor connections
 * open), as in a running fleet: a cold process serving its first burst is slow enough to send a
 * call late by more than the safety margin. A few rounds of concurrent calls per replica; every
 * one must be answered 201 or 429.
 */
export async function warmUp(gateways: readonly GatewayProcess[], key: string, roomPrefix: string): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const answers = await Promise.all(
      gateways.flatMap((gateway, index) =>
        Array.from({ length: 5 }, (_, n) =>
          createRoom(gateway.url, key, `${roomPrefix}-warm-${index}-${round}-${n}`, 10_000).then((answer) => ({ index, answer })),
        ),
      ),
    );
    // A 429 warms the same code paths; the fixed-window baseline of the benchmark gives some.
    const failed = answers.find(({ answer }) => answer.status !== 201 && answer.status !== 429);
    if (failed) {
      const { index, answer } = failed;
      throw new Error(`warm-up call to replica ${index} answered ${answer.status}: ${answer.body ?? answer.error ?? ''}`);
    }
  }
}

// ------------------------------------------------------------------ figures

export interface FleetFigures {
  vendorCalls: number;
  /** The most calls the vendor saw in any window of `windowMs` (its own monotonic clock). */
  maxInAnyWindow: number;
  /** Calls the vendor refused for frequency (660300005). */
  vendorRefusals: number;
  /** Rooms created per second while demand exceeded the budget. */
  roomsPerSecond: number;
  /** roomsPerSecond as a share of the budget (qpsLimit per windowMs). */
  budgetShare: number;
  /** Requests per second the callers sent over the whole load. */
  offeredPerSecond: number;
  statuses: Record<string, number>;
  /** Latency of the 201 answers: mostly the wait for a slot (the fake answers in about 1 ms). */
  createdLatencyP50Ms: number;
  createdLatencyP99Ms: number;
}

export interface FigureOptions {
  qpsLimit: number;
  windowMs: number;
  /** Start of the saturated period (wall clock ms): demand exceeds the budget from here on. */
  saturatedFrom: number;
  saturatedUntil: number;
}

export function fleetFigures(calls: readonly VendorCall[], load: LoadResult, options: FigureOptions): FleetFigures {
  const created = calls.filter(
    (c) => c.code === ZimCode.success && c.at >= options.saturatedFrom && c.at < options.saturatedUntil,
  );
  const seconds = (options.saturatedUntil - options.saturatedFrom) / 1000;
  const roomsPerSecond = created.length / seconds;
  const statuses: Record<string, number> = {};
  for (const answer of load.answers) {
    const label = answer.error ? 'no answer' : String(answer.status);
    statuses[label] = (statuses[label] ?? 0) + 1;
  }
  const createdLatencies = load.answers.filter((a) => a.status === 201).map((a) => a.latencyMs);
  return {
    vendorCalls: calls.length,
    maxInAnyWindow: maxCallsInAnyWindow(calls.map((c) => c.atHr), options.windowMs),
    vendorRefusals: calls.filter((c) => c.code === ZimCode.frequencyLimit).length,
    roomsPerSecond,
    budgetShare: roomsPerSecond / (options.qpsLimit * (1000 / options.windowMs)),
    offeredPerSecond: load.answers.length / ((load.stoppedAt - load.startedAt) / 1000),
    statuses,
    createdLatencyP50Ms: percentile(createdLatencies, 0.5),
    createdLatencyP99Ms: percentile(createdLatencies, 0.99),
  };
}

/** Nearest-rank percentile; NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
