/**
 * Helpers for `npm run bench` (bench/gateway.ts): services started as their own processes with
 * their logs in files, a keep-alive HTTP client, an open-loop paced sender, and readings of a
 * process's memory.
 *
 * Why not test/support/gateway-process.ts for the gateway: it keeps and JSON-parses every log
 * line in the parent, and the parent here is also the load generator. At thousands of refusals
 * per second (each one a `warn` line) that parsing would take CPU from the load generator during
 * the gateway's runs only, and skew the comparison. Here each service writes its log to a file,
 * as a container runtime would collect it, and readiness is found by polling HTTP, which also
 * gives the spawn-to-ready time.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChildRegistry, exitPromise, type ExitStatus } from '../test/support/child-registry.js';
import { closedPort } from '../test/support/ports.js';

/** This harness's children only (the registry's exit hook SIGKILLs survivors). */
const children = new ChildRegistry();

export interface Service {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  /** From spawn() to the first answer the readiness probe accepted (ms). */
  readonly spawnToReadyMs: number;
  readonly logPath: string;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the process exited. */
  stop(): Promise<ExitStatus>;
  readonly exited: Promise<ExitStatus>;
}

export interface Probe {
  method: 'GET' | 'POST';
  path: string;
  /** The answer that counts as ready (any status by default). */
  ready?: (status: number) => boolean;
}

/** Ends every service this module started that is still running. */
export async function stopAllServices(): Promise<void> {
  await Promise.all(children.running().map((child) => stopProcess(child.pid!, exitPromise(child))));
}

async function stopProcess(pid: number, exited: Promise<ExitStatus>): Promise<ExitStatus> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return exited; // already gone
  }
  const first = await Promise.race([exited, sleep(5_000).then(() => 'timeout' as const)]);
  if (first === 'timeout') {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return exited;
}

/**
 * Spawns `node <script>` with a clean environment (PATH, HOME, `env`, PORT on a free port,
 * SHUTDOWN_GRACE_MS=0), its stdout and stderr appended to `<logDir>/<name>.log`, and resolves
 * once `probe` is answered (polled every `pollMs`). The time from spawn to that answer is
 * `spawnToReadyMs`.
 */
export async function startService(options: {
  name: string;
  script: string;
  /** Node's own options, before the script. */
  nodeOptions?: string[];
  env: Record<string, string>;
  probe: Probe;
  logDir: string;
  pollMs?: number;
  timeoutMs?: number;
}): Promise<Service> {
  if (!existsSync(options.script)) throw new Error(`${options.script} does not exist: build first`);
  const port = await closedPort();
  const logPath = path.join(options.logDir, `${options.name}.log`);
  const logFd = openSync(logPath, 'a');
  const env: Record<string, string> = { SHUTDOWN_GRACE_MS: '0', ...options.env, PORT: String(port) };
  if (process.env.PATH !== undefined) env.PATH = process.env.PATH;
  if (process.env.HOME !== undefined) env.HOME = process.env.HOME;
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...(options.nodeOptions ?? []), options.script], { env, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd); // the child has its own copy
  children.track(child);
  const exited = exitPromise(child);
  const url = `http://127.0.0.1:${port}`;
  const ready = options.probe.ready ?? (() => true);
  const deadline = spawnedAt + (options.timeoutMs ?? 30_000);
  let exitedEarly = false;
  void exited.then(() => {
    exitedEarly = true;
  });
  for (;;) {
    const status = await probeOnce(url, options.probe);
    if (status !== null && ready(status)) break;
    if (exitedEarly || performance.now() > deadline) {
      await stopProcess(child.pid!, exited);
      throw new Error(
        `${options.name} ${exitedEarly ? 'exited before it was ready' : 'was not ready in time'}; ` +
          `log ${logPath}:\n${tail(logPath)}`,
      );
    }
    await sleep(options.pollMs ?? 5);
  }
  const spawnToReadyMs = performance.now() - spawnedAt;
  return {
    name: options.name,
    url,
    pid: child.pid!,
    spawnToReadyMs,
    logPath,
    stop: () => stopProcess(child.pid!, exited),
    exited,
  };
}

/** The probe's status, or null when nothing answered (not listening yet). */
function probeOnce(url: string, probe: Probe): Promise<number | null> {
  return new Promise((resolve) => {
    const request = http.request(
      `${url}${probe.path}`,
      {
        method: probe.method,
        agent: false,
        timeout: 1_000,
        headers: probe.method === 'POST' ? { 'content-type': 'application/json', 'content-length': 2 } : {},
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? null));
        response.on('error', () => resolve(null));
      },
    );
    request.on('timeout', () => request.destroy(new Error('probe timeout')));
    request.on('error', () => resolve(null));
    request.end(probe.method === 'POST' ? '{}' : undefined);
  });
}

export function tail(file: string, chars = 3000): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length > chars ? `…${text.slice(-chars)}` : text;
  } catch {
    return '(no log)';
  }
}

// ------------------------------------------------------------------ HTTP client

export interface Exchange {
  status: number;
  body: string;
  /** From the request's creation to the end of the response body (ms). */
  latencyMs: number;
  /** Set when no HTTP answer came. */
  error?: string;
}

/** One keep-alive agent per target, like the gateway's own agent towards the vendor. */
export function keepAliveAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 64 });
}

export function post(
  agent: http.Agent,
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs = 15_000,
): Promise<Exchange> {
  const started = performance.now();
  return new Promise((resolve) => {
    const request = http.request(
      url,
      {
        method: 'POST',
        agent,
        timeout: timeoutMs,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            latencyMs: performance.now() - started,
          }),
        );
        response.on('error', (error) =>
          resolve({ status: 0, body: '', latencyMs: performance.now() - started, error: error.message }),
        );
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', (error) =>
      resolve({ status: 0, body: '', latencyMs: performance.now() - started, error: error.message }),
    );
    request.end(body);
  });
}

// ------------------------------------------------------------------ paced load

export interface PacedResult<T> {
  samples: T[];
  /** The most any send started after its scheduled time (ms): the sender's own lateness. */
  maxLateMs: number;
}

/**
 * Open loop at a fixed rate: request i is sent at start + i / rate whatever the earlier ones are
 * doing (a slow answer does not delay the next request), `count` requests in all.
 */
export async function paced<T>(rate: number, count: number, send: (i: number) => Promise<T>): Promise<PacedResult<T>> {
  const interval = 1000 / rate;
  const start = performance.now() + 20;
  const pending: Promise<T>[] = [];
  let maxLateMs = 0;
  for (let i = 0; i < count; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    maxLateMs = Math.max(maxLateMs, performance.now() - due);
    pending.push(send(i));
  }
  return { samples: await Promise.all(pending), maxLateMs };
}

// ------------------------------------------------------------------ figures

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Resident set size of a process in bytes (VmRSS from /proc, Linux: where prom-client reads it too). */
export function rssBytes(pid: number): number {
  const statusFile = `/proc/${pid}/status`;
  if (existsSync(statusFile)) {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(statusFile, 'utf8'));
    if (match) return Number(match[1]) * 1024;
  }
  throw new Error(`cannot read the RSS of process ${pid} (no /proc/${pid}/status)`);
}

/** A gauge's value from Prometheus text (the first sample of that name). */
export function metricValue(text: string, name: string): number {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, 'm').exec(text);
  if (!match) throw new Error(`metric ${name} not found`);
  return Number(match[1]);
}

export function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) {
    const label = key(item);
    counts[label] = (counts[label] ?? 0) + 1;
  }
  return counts;
}

/** BENCH_SMOKE=1: every phase shortened, a check that the bench runs rather than a measurement. */
export const SMOKE = process.env.BENCH_SMOKE === '1';

/** A numeric knob from the environment, or its default (the smoke default under BENCH_SMOKE=1). */
export function knob(name: string, normal: number, smoke: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return SMOKE ? smoke : normal;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
  return value;
}
