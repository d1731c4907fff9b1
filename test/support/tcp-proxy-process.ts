/**
 * The tests' handle on a TCP proxy process (tcp-proxy-main.ts, built into dist-dev by `npm run
 * build:dev`): `startTcpProxy({ target })` spawns one in front of a target and resolves once it
 * forwards; the handle cuts, restores, shapes and reads the proxy's stats over its control port.
 *
 *   const proxy = await startTcpProxy({ target: `127.0.0.1:${redis.port}` });
 *   await startReplicas({ ..., envFor: (i) => (i === 0 ? { REDIS_URL: proxy.url('redis') } : {}) });
 *   await proxy.cut('blackhole', { openConnections: 'freeze' });
 *   await proxy.restore();
 *
 * Every proxy is tracked in this module's own ChildRegistry: `stopAllTcpProxies()` (in afterAll)
 * stops the ones still running and nothing else; jest's global teardown kills what a dead worker
 * left (see child-registry.ts). The process gets a clean environment (PATH, HOME, its own
 * variables); its output is kept for failure messages.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ChildRegistry, exitPromise, stopProcess, type ExitStatus } from './child-registry.js';
import { REPO_ROOT } from './gateway-process.js';
import type { CutMode, CutOptions, Shaping, TcpProxyStats, TcpProxyTarget } from './tcp-proxy.js';

export type { CutMode, CutOptions, Shaping, TcpProxyStats };

const DEFAULT_SCRIPT = path.join('dist-dev', 'support', 'tcp-proxy-main.js');
const READY = /tcp proxy listening on port (\d+), control port (\d+)/;
const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const CONTROL_TIMEOUT_MS = 5_000;

export interface TcpProxyOptions {
  /** Where to forward: `host:port`, or its parts. */
  target: string | TcpProxyTarget;
  /** Delays from the start (none by default); `shape()` replaces them while it runs. */
  shaping?: Shaping;
  /** The entry point, relative to the repository root (default dist-dev/support/tcp-proxy-main.js). */
  script?: string;
}

export interface TcpProxyProcess {
  /** The port clients connect to, on 127.0.0.1. */
  readonly port: number;
  readonly host: string;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** `<scheme>://127.0.0.1:<port>`, e.g. url('redis') for REDIS_URL, url('http') for a vendor base URL. */
  url(scheme: string): string;
  readonly controlUrl: string;
  readonly pid: number;
  /** Cuts the connection to the target (see tcp-proxy.ts); resolves once the cut is in effect. */
  cut(mode: CutMode, options?: CutOptions): Promise<TcpProxyStats>;
  /** Forwards again; resolves once it does. */
  restore(): Promise<TcpProxyStats>;
  /** Replaces the shaping in effect. */
  shape(shaping: Shaping): Promise<TcpProxyStats>;
  stats(): Promise<TcpProxyStats>;
  /** SIGTERM, then SIGKILL after a deadline; resolves once the process exited. */
  stop(): Promise<ExitStatus>;
  readonly exited: Promise<ExitStatus>;
  /** What the process wrote (for failure messages). */
  output(): string;
}

/** This harness's children only: stop-all here never touches the other harnesses' processes. */
const children = new ChildRegistry();

/** PIDs of every proxy still running (for diagnostics). */
export function runningTcpProxyPids(): number[] {
  return children.pids();
}

/** Stops every proxy this module started that is still running (call in afterAll). */
export async function stopAllTcpProxies(): Promise<void> {
  await Promise.all(children.running().map((child) => stopProcess(child.pid!, exitPromise(child), STOP_TIMEOUT_MS)));
}

function targetText(target: string | TcpProxyTarget): string {
  return typeof target === 'string' ? target : `${target.host}:${target.port}`;
}

export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxyProcess> {
  const script = path.resolve(REPO_ROOT, options.script ?? DEFAULT_SCRIPT);
  if (!existsSync(script)) throw new Error(`${script} does not exist: run \`npm run build:dev\` first`);
  const env: Record<string, string> = { TCP_PROXY_TARGET: targetText(options.target) };
  if (options.shaping) env.TCP_PROXY_SHAPING = JSON.stringify(options.shaping);
  const { child, exited, output } = children.spawnNodeScript(script, REPO_ROOT, env);

  const ports = await new Promise<{ port: number; controlPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`the tcp proxy did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    const onData = (): void => {
      const match = READY.exec(output());
      if (match) finish({ port: Number(match[1]), controlPort: Number(match[2]) });
    };
    const finish = (outcome: { port: number; controlPort: number } | Error): void => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    child.stdout.on('data', onData);
    void exited.then(({ code, signal }) => finish(new Error(`the tcp proxy exited before it listened (code ${code}, signal ${signal})`)));
  }).catch(async (error: Error) => {
    await stopProcess(child.pid!, exited, STOP_TIMEOUT_MS);
    throw new Error(`${error.message}\n--- tcp proxy output ---\n${output()}`);
  });

  const controlUrl = `http://${HOST}:${ports.controlPort}`;
  const control = async (method: string, route: string, body?: unknown): Promise<TcpProxyStats> => {
    const response = await fetch(`${controlUrl}${route}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(CONTROL_TIMEOUT_MS),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`tcp proxy ${method} ${route} answered ${response.status}: ${text}`);
    return JSON.parse(text) as TcpProxyStats;
  };

  return {
    port: ports.port,
    host: HOST,
    address: `${HOST}:${ports.port}`,
    url: (scheme) => `${scheme}://${HOST}:${ports.port}`,
    controlUrl,
    pid: child.pid!,
    cut: (mode, cutOptions = {}) => control('POST', '/cut', { mode, ...cutOptions }),
    restore: () => control('POST', '/restore'),
    shape: (shaping) => control('PUT', '/shaping', shaping),
    stats: () => control('GET', '/stats'),
    stop: () => stopProcess(child.pid!, exited, STOP_TIMEOUT_MS),
    exited,
    output,
  };
}
