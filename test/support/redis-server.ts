/**
 * Gives test suites a Redis they own: a private `redis-server` child on a free loopback port, or
 * the server named by `REDIS_URL` when a suite only needs *a* Redis.
 *
 * - `startPrivateRedis()` always spawns `redis-server` (no persistence: `--save '' --appendonly
 *   no`) on 127.0.0.1 and a port found by binding port 0 and releasing it. When redis-server then
 *   fails to bind (another process took the port in between), it exits and we retry on a new port.
 *   Such a server is `owned`: the suite may stop, restart (same port, empty data) and pause
 *   (SIGSTOP: connections stay open, nothing answers) / resume (SIGCONT) it.
 * - `startTestRedis()` uses `REDIS_URL` when set (`owned: false`: never stopped, restarted or paused
 *   by us; it is checked to answer PING once), else starts a private server.
 * - Readiness is a raw RESP `PING` → `+PONG` polled with a deadline, followed by `INFO server` to
 *   make sure the answer came from OUR child (its process_id) and not from some other Redis that
 *   won the port race. stdout and stderr are captured, and every failure message includes them.
 * - Every child is tracked in this module's own registry (a `ChildRegistry`, child-registry.ts):
 *   `stopAllRedis()` stops the ones still running (also paused ones), and no gateway. Call it in
 *   afterAll: jest runs afterAll also when tests failed, and that is the mechanism that counts
 *   under jest. (The registry's process 'exit' hook SIGKILLs survivors when this module runs
 *   outside jest; under jest `process` is a sandboxed copy whose 'exit' never fires. Ctrl-C
 *   reaches the children anyway: they share the terminal's process group.)
 * - No fixed sleeps: start-up polls PING with a deadline, stop waits for the exit event (with a
 *   deadline, then SIGKILL) and then polls until the port refuses connections.
 * - `redis-server` must be on PATH (`apt-get install -y redis-server`); otherwise every start
 *   throws an error saying so.
 * - The process-level pieces (`launchRedisServer`, `stopChild`, `rawCommand`, …) are exported for
 *   redis-cluster.ts, whose nodes are redis-servers too, tracked in that harness's own registry.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { programOnPath } from './program-on-path.js';
import { ChildRegistry, exitPromise, type ExitStatus } from './child-registry.js';
import { closedPort } from './ports.js';

// ------------------------------------------------------------------ types

export interface TestRedis {
  /** `redis://127.0.0.1:<port>` for a private server; `REDIS_URL` as given otherwise. */
  readonly url: string;
  readonly port: number;
  /** True when this harness started the server (and so can stop and restart it). */
  readonly owned: boolean;
  /**
   * Stops the server (SIGTERM, then SIGKILL after a deadline); resolves after the process exited
   * and the port no longer accepts connections. Throws for a non-owned server.
   */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty data), resolving once PING answers PONG. Throws for a non-owned server. */
  restart(): Promise<void>;
  /** For a private server: its process has not exited (a paused one counts as running). Always true for a non-owned one. */
  isRunning(): boolean;
  /** SIGSTOP / SIGCONT the owned server, to simulate a Redis that hangs (connections stay open but nothing answers). */
  pause(): void;
  resume(): void;
}

// ------------------------------------------------------------------ constants

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const POLL_INTERVAL_MS = 20;
const PROBE_TIMEOUT_MS = 500;
const BIND_ATTEMPTS = 5;
const INSTALL_HINT = 'install it (`apt-get install -y redis-server`)';

// ------------------------------------------------------------------ registry of live children

/** This harness's children only: stop-all here never touches the other harnesses' processes. */
const children = new ChildRegistry();

/** PIDs of every private redis-server still running (for diagnostics). */
export function runningRedisPids(): number[] {
  return children.pids();
}

/** Stops every private server still running (call in afterAll). Safe to call repeatedly. */
export async function stopAllRedis(): Promise<void> {
  await Promise.all(children.running().map((child) => stopChild(child, STOP_TIMEOUT_MS)));
}

// ------------------------------------------------------------------ child processes

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves with `value` after `ms`, or never settles if `abort` fires first. */
function delay<T>(ms: number, value: T, abort?: AbortSignal): Promise<T> {
  return new Promise((resolve) => {
    const handle = setTimeout(() => resolve(value), ms);
    abort?.addEventListener('abort', () => clearTimeout(handle));
  });
}

export async function stopChild(child: ChildProcess, timeoutMs = STOP_TIMEOUT_MS): Promise<ExitStatus> {
  const exited = exitPromise(child);
  if (hasExited(child)) return exited;
  // SIGTERM makes redis-server shut down (nothing to save: --save ''); the SIGCONT after it
  // delivers the pending SIGTERM to a paused (SIGSTOPped) server and is a no-op otherwise.
  child.kill('SIGTERM');
  child.kill('SIGCONT');
  const timer = new AbortController();
  const first = await Promise.race([exited, delay(timeoutMs, 'timeout' as const, timer.signal)]);
  timer.abort();
  if (first === 'timeout') child.kill('SIGKILL');
  return exited;
}

/** Collects both streams as text for failure messages (the tail is kept). */
class OutputCapture {
  private text = '';

  constructor(child: ChildProcess) {
    for (const stream of ['stdout', 'stderr'] as const) {
      const source = child[stream];
      if (!source) continue;
      source.setEncoding('utf8');
      source.on('data', (chunk: string) => {
        this.text = (this.text + chunk).slice(-20_000);
      });
    }
  }

  get output(): string {
    return this.text;
  }

  describe(): string {
    const tail = this.text.length > 4000 ? `…${this.text.slice(-4000)}` : this.text;
    return `\n--- redis-server output (stdout+stderr) ---\n${tail === '' ? '(none)' : tail}`;
  }
}

/** The absolute path of `program` (redis-server, redis-cli) on PATH; throws with an install hint when absent. */
export function findRedisProgram(program = 'redis-server'): string {
  const found = programOnPath(program);
  if (found !== undefined) return found;
  if (program !== 'redis-server') throw new Error(`${program} is not on PATH: ${INSTALL_HINT}`);
  throw new Error(`redis-server is not on PATH: ${INSTALL_HINT}, or set REDIS_URL for suites that accept a shared Redis`);
}

// ------------------------------------------------------------------ raw RESP probes

/**
 * One RESP reply: its type byte ('+', '-', ':', '$', '*') and text (null for a null bulk string;
 * the element count for an array), and an array's elements.
 */
export interface RawReply {
  type: string;
  value: string | null;
  elements?: RawReply[];
}

/** RESP encoding of one command. */
function encodeCommand(args: string[]): string {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return parts.join('');
}

/**
 * Sends one command over a fresh TCP connection and resolves with its reply; rejects when the
 * connection fails or closes, or nothing complete arrives within `timeoutMs`. With a password,
 * AUTH goes first on the same connection, and a failed AUTH is the reply.
 */
export function rawCommand(
  port: number,
  args: string[],
  { timeoutMs = PROBE_TIMEOUT_MS, password }: { timeoutMs?: number; password?: string } = {},
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: HOST, port });
    let buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (outcome: RawReply | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const timer = setTimeout(() => finish(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
    let authPending = password !== undefined;
    socket.once('connect', () => {
      socket.write((password === undefined ? '' : encodeCommand(['AUTH', password])) + encodeCommand(args));
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      let parsed = parseReply(buffer);
      if (parsed && authPending) {
        authPending = false;
        if (parsed.reply.type === '-') return finish(parsed.reply);
        buffer = buffer.subarray(parsed.end);
        parsed = parseReply(buffer);
      }
      if (parsed) finish(parsed.reply);
    });
    socket.once('error', (error) => finish(error));
    socket.once('close', () => finish(new Error('connection closed without a reply')));
  });
}

/**
 * The complete reply at `offset` in `buffer` and the offset just past it, or undefined when more
 * bytes are needed.
 */
function parseReply(buffer: Buffer, offset = 0): { reply: RawReply; end: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buffer[offset]);
  const header = buffer.subarray(offset + 1, lineEnd).toString('utf8');
  const start = lineEnd + 2;
  if (type === '*') {
    const elements: RawReply[] = [];
    let end = start;
    for (let index = 0; index < Number(header); index++) {
      const element = parseReply(buffer, end);
      if (!element) return undefined;
      elements.push(element.reply);
      end = element.end;
    }
    return { reply: { type, value: header, elements }, end };
  }
  if (type !== '$') return { reply: { type, value: header }, end: start };
  const length = Number(header);
  if (length < 0) return { reply: { type, value: null }, end: start };
  if (buffer.length < start + length + 2) return undefined;
  return { reply: { type, value: buffer.subarray(start, start + length).toString('utf8') }, end: start + length + 2 };
}

/** True when something accepts a TCP connection on the port (false when refused). */
function acceptsConnections(port: number, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: HOST, port });
    const finish = (accepted: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(accepted);
    };
    // A loopback connect that neither succeeds nor is refused is not a closed port.
    const timer = setTimeout(() => finish(true), timeoutMs);
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** 'ours' once the server on the port answers PONG and reports our child's pid. */
async function probe(port: number, pid: number, password?: string): Promise<'ours' | 'other' | 'not-ready'> {
  try {
    const pong = await rawCommand(port, ['PING'], { password });
    if (pong.type !== '+' || pong.value !== 'PONG') return 'not-ready';
    const info = await rawCommand(port, ['INFO', 'server'], { password });
    const match = /^process_id:(\d+)/m.exec(info.value ?? '');
    return match && Number(match[1]) === pid ? 'ours' : 'other';
  } catch {
    return 'not-ready';
  }
}

// ------------------------------------------------------------------ start one server

/** redis-server could not listen on the port (it exits): the caller may retry on another. */
export class BindError extends Error {}

export function serverArgs(port: number): string[] {
  return [
    '--port', String(port),
    '--bind', HOST,
    '--save', '',
    '--appendonly', 'no',
    '--protected-mode', 'yes',
    '--daemonize', 'no',
    '--loglevel', 'warning',
  ];
}

export interface LaunchOptions {
  /** The registry the child is tracked in (default: this harness's, which stopAllRedis() stops). */
  registry?: ChildRegistry;
  /** The server's `requirepass`, for the readiness probe. */
  password?: string;
}

/** Spawns redis-server on `port` and resolves once it answers PING (and is our child). */
export async function launchRedisServer(
  port: number,
  args = serverArgs(port),
  { registry = children, password }: LaunchOptions = {},
): Promise<ChildProcess> {
  const binary = findRedisProgram();
  // cwd: a writable directory that is not the repository, should redis-server ever write a file.
  const child = spawn(binary, args, { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  registry.track(child);
  const exited = exitPromise(child);
  const capture = new OutputCapture(child);
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });

  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    if (hasExited(child)) {
      const { code, signal } = await exited;
      const reason =
        `redis-server on port ${port} exited before answering PING (code ${code}, signal ${signal})` +
        (spawnError ? `: ${spawnError.message}` : '') +
        capture.describe();
      if (/bind|address already in use|could not create server tcp listening socket/i.test(capture.output)) {
        throw new BindError(reason);
      }
      throw new Error(reason);
    }
    const outcome = await probe(port, child.pid!, password);
    if (outcome === 'ours' && !hasExited(child)) return child;
    const lastProbe = outcome === 'other' ? 'another Redis answers on this port' : 'no PONG';
    if (performance.now() > deadline) {
      await stopChild(child, STOP_TIMEOUT_MS);
      throw new Error(
        `redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms (${lastProbe})${capture.describe()}`,
      );
    }
    // Wake on exit too, so a failed start is reported at once.
    const timer = new AbortController();
    await Promise.race([exited, delay(POLL_INTERVAL_MS, undefined, timer.signal)]);
    timer.abort();
  }
}

export async function waitUntilRefused(port: number, timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (await acceptsConnections(port)) {
    if (performance.now() > deadline) {
      throw new Error(`port ${port} still accepts connections ${timeoutMs} ms after redis-server exited`);
    }
    await delay(POLL_INTERVAL_MS, undefined);
  }
}

// ------------------------------------------------------------------ handles

class PrivateRedis implements TestRedis {
  readonly owned = true;
  readonly url: string;

  constructor(
    readonly port: number,
    private child: ChildProcess,
    /** The server's arguments, kept for restart (a durable server finds its data again). */
    private readonly args: string[] = serverArgs(port),
  ) {
    this.url = `redis://${HOST}:${port}`;
  }

  async stop(): Promise<void> {
    await stopChild(this.child, STOP_TIMEOUT_MS);
    await waitUntilRefused(this.port);
  }

  async restart(): Promise<void> {
    if (this.isRunning()) await this.stop();
    try {
      this.child = await launchRedisServer(this.port, this.args);
    } catch (error) {
      const hint = error instanceof BindError ? ' (something else took the port meanwhile)' : '';
      throw new Error(`restart on port ${this.port} failed${hint}: ${(error as Error).message}`, { cause: error });
    }
  }

  isRunning(): boolean {
    return !hasExited(this.child);
  }

  pause(): void {
    if (!this.isRunning()) throw new Error(`redis-server on port ${this.port} is not running: cannot pause it`);
    this.child.kill('SIGSTOP');
  }

  resume(): void {
    if (!this.isRunning()) throw new Error(`redis-server on port ${this.port} is not running: cannot resume it`);
    this.child.kill('SIGCONT');
  }
}

class ExternalRedis implements TestRedis {
  readonly owned = false;

  constructor(
    readonly url: string,
    readonly port: number,
  ) {}

  private refuse(what: string): never {
    throw new Error(`cannot ${what} the Redis from REDIS_URL: it is not owned by this harness (use startPrivateRedis)`);
  }

  async stop(): Promise<void> {
    this.refuse('stop');
  }

  async restart(): Promise<void> {
    this.refuse('restart');
  }

  isRunning(): boolean {
    return true;
  }

  pause(): void {
    this.refuse('pause');
  }

  resume(): void {
    this.refuse('resume');
  }
}

// ------------------------------------------------------------------ public entry points

/** Always starts a private `redis-server` on a free loopback port: for tests that stop, restart or pause it. */
export interface PrivateRedisOptions {
  /**
   * Keeps its data as operators run Redis for queues: an append-only file written on every command,
   * in a directory of its own, and `maxmemory-policy noeviction`; restart() finds the data again.
   */
  durable?: boolean;
}

export async function startPrivateRedis({ durable = false }: PrivateRedisOptions = {}): Promise<TestRedis> {
  findRedisProgram(); // fail fast with the install hint
  let lastBindError: BindError | undefined;
  const dataDir = durable ? mkdtempSync(path.join(tmpdir(), 'redis-aof-')) : undefined;
  for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
    const port = await closedPort();
    const args = serverArgs(port);
    if (dataDir !== undefined) {
      args.splice(args.indexOf('--appendonly'), 2, '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dataDir, '--maxmemory-policy', 'noeviction');
    }
    try {
      return new PrivateRedis(port, await launchRedisServer(port, args), args);
    } catch (error) {
      if (!(error instanceof BindError)) throw error;
      lastBindError = error;
    }
  }
  throw new Error(`redis-server failed to bind ${BIND_ATTEMPTS} times: ${lastBindError?.message}`);
}

/** `REDIS_URL` when set (owned: false, not stopped by us), else a private server. */
export async function startTestRedis(): Promise<TestRedis> {
  const url = process.env.REDIS_URL;
  if (url === undefined || url.trim() === '') return startPrivateRedis();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('REDIS_URL is not a valid URL');
  }
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: START_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {
    // reported through the rejected connect/ping below
  });
  try {
    await client.connect();
    const pong = await client.ping();
    if (pong !== 'PONG') throw new Error(`PING answered ${String(pong)}`);
  } catch (error) {
    // The message names host and port only: REDIS_URL may carry a password.
    throw new Error(`the Redis from REDIS_URL (${parsed.hostname}:${port}) does not answer PING: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    if (client.status !== 'end') client.disconnect();
  }
  return new ExternalRedis(url, port);
}

/** A private Redis Sentinel (`redis-server <conf> --sentinel`) watching one primary. */
export interface TestSentinel {
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Starts a Sentinel on a free port monitoring the primary on `primaryPort` as `masterName`
 * (quorum 1), and resolves once it answers. Stopped by `stopAllRedis()` too.
 */
export async function startPrivateSentinel(primaryPort: number, masterName: string): Promise<TestSentinel> {
  const port = await closedPort();
  // Sentinel rewrites its configuration file, so it gets a fresh writable one.
  const config = path.join(mkdtempSync(path.join(tmpdir(), 'zim-gw-sentinel-')), 'sentinel.conf');
  writeFileSync(
    config,
    [`port ${port}`, 'bind 127.0.0.1', `sentinel monitor ${masterName} 127.0.0.1 ${primaryPort} 1`, ''].join('\n'),
  );
  // It knows the primary from its configuration as soon as it answers PING.
  const child = await launchRedisServer(port, [config, '--sentinel']);
  return { port, stop: async () => void (await stopChild(child, STOP_TIMEOUT_MS)) };
}
