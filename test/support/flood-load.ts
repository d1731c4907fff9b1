/**
 * A runaway client in a process of its own, for the fleet spec and the benchmark of its
 * neighbours (test/fleet/neighbours.fleet-spec.ts, bench/flood.ts): ~100 keep-alive connections
 * against one target, each asking again at once whatever the answer (flood-load-main.ts).
 *
 *   const report = await floodFor({ targetUrl: gateway.url, apiKey, roomPrefix: 'bulk-flood', durationMs: 20_000 });
 *   const { result, flood } = await duringFlood({ targetUrl, apiKey, roomPrefix }, () => runTeamLoad(...));
 *
 * `floodFor` lasts as long as it is told (a fleet run's `during`: the light teams send while it
 * lasts); `duringFlood` is answering before `work` starts and stops once it ended (a window to
 * read a process's CPU around). The report counts the answers by status over the flood's life.
 * The process gets a clean environment (PATH, HOME, its own variables) and is tracked in this module's own ChildRegistry: `stopAllFloods()` (in afterAll)
 * ends the ones still running, jest's global teardown what a dead worker left (child-registry.ts).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ChildRegistry, exitPromise, stopProcess, type ExitStatus } from './child-registry.js';
import { vendorCallRoomId, type VendorCall } from './fleet.js';
import { recordEmission } from './secret-scan.js';

export interface FloodOptions {
  /** Base URL of the one process flooded: a gateway replica, or the bare Nest app of the benchmark. */
  targetUrl: string;
  /** The runaway client's API key (handed to the process in its environment, never printed). */
  apiKey: string;
  /** Default 100. */
  connections?: number;
  /** The flood's rooms are `<roomPrefix>-<n>`, so its calls can be told apart at the vendor. */
  roomPrefix: string;
  /** The flood ends by itself after this long (ms, from its start); none: until stopped. */
  durationMs?: number;
}

/** What the flood was answered, counted by its own process. */
export interface FloodReport {
  /** Wall clock (ms) of its first request and of its stop. */
  startedAt: number;
  finishedAt: number;
  /** Answers by HTTP status, e.g. `{ "429": 23180, "201": 205 }`. */
  statuses: Record<string, number>;
  /** Requests without an answer: connection errors, and those past autocannon's 10 s timeout. */
  errors: number;
  timeouts: number;
}

export interface Flood {
  readonly pid: number;
  /** SIGTERM; resolves with the report the process prints as it ends. */
  stop(): Promise<FloodReport>;
  /** With `durationMs`: resolves with the report once the process ended by itself (killed, and rejects, well past its duration). */
  finished(): Promise<FloodReport>;
  readonly exited: Promise<ExitStatus>;
}

/** Runs from source whichever build imports this module (see flood-load-main.ts). */
const ENTRY = path.join('test', 'support', 'flood-load-main.ts');
const READY = /^flood answered$/m;
const START_TIMEOUT_MS = 15_000;
/** autocannon stops at its next 100 ms sample; connections still open are then destroyed. */
const STOP_TIMEOUT_MS = 10_000;
/** roomId takes 32 characters; the counter (base 36) needs up to 7 after the dash. */
const ROOM_PREFIX = /^[A-Za-z0-9-]{1,24}$/;

/** This harness's children only: stopping them never touches the other harnesses' processes. */
const children = new ChildRegistry();

/** Ends every flood this module started that is still running (call in afterAll). */
export async function stopAllFloods(): Promise<void> {
  await Promise.all(children.running().map((child) => stopProcess(child.pid!, exitPromise(child), STOP_TIMEOUT_MS)));
}

/** Starts a flood; resolves once its first answer came. */
export async function startFlood(options: FloodOptions): Promise<Flood> {
  if (!ROOM_PREFIX.test(options.roomPrefix)) throw new Error('roomPrefix: 1-24 of A-Z a-z 0-9 and -');
  const root = repositoryRoot();
  const env: Record<string, string> = {
    FLOOD_TARGET_URL: options.targetUrl,
    FLOOD_API_KEY: options.apiKey,
    FLOOD_CONNECTIONS: String(options.connections ?? 100),
    FLOOD_ROOM_PREFIX: options.roomPrefix,
  };
  if (options.durationMs !== undefined) env.FLOOD_DURATION_MS = String(options.durationMs);
  const { child, exited, output } = children.spawnNodeScript(ENTRY, root, env);
  // For the whole-suite secret scan: the key must not appear in what the process wrote.
  void exited.then(() => recordEmission('flood', output()));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`the flood got no answer within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    const onData = (): void => {
      if (READY.test(output())) finish();
    };
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      if (error) reject(error);
      else resolve();
    };
    child.stdout.on('data', onData);
    void exited.then(({ code, signal }) => finish(new Error(`the flood exited before its first answer (code ${code}, signal ${signal})`)));
  }).catch(async (error: Error) => {
    await stopProcess(child.pid!, exited, STOP_TIMEOUT_MS);
    throw new Error(`${error.message}\n--- flood output ---\n${output()}`);
  });

  const report = (status: ExitStatus): FloodReport => {
    const line = output().split('\n').find((l) => l.startsWith('{'));
    if (status.code !== 0 || line === undefined) {
      throw new Error(`the flood ended without its report (code ${status.code}, signal ${status.signal})\n--- flood output ---\n${output()}`);
    }
    return JSON.parse(line) as FloodReport;
  };
  const finished = async (): Promise<FloodReport> => {
    if (options.durationMs === undefined) throw new Error('a flood without durationMs ends only when stopped: stop() it');
    const deadline = new AbortController();
    const first = await Promise.race([
      exited,
      sleep(options.durationMs + STOP_TIMEOUT_MS, 'overdue' as const, { signal: deadline.signal }).catch(() => 'exited' as const),
    ]);
    deadline.abort();
    if (first === 'overdue') {
      await stopProcess(child.pid!, exited, STOP_TIMEOUT_MS);
      throw new Error(`the flood was still running ${STOP_TIMEOUT_MS} ms past its ${options.durationMs} ms\n--- flood output ---\n${output()}`);
    }
    return report(await exited);
  };
  return {
    pid: child.pid!,
    exited,
    stop: async () => report(await stopProcess(child.pid!, exited, STOP_TIMEOUT_MS)),
    finished,
  };
}

/** A flood of `durationMs`; resolves with its report once it ended by itself. */
export async function floodFor(options: FloodOptions & { durationMs: number }): Promise<FloodReport> {
  return (await startFlood(options)).finished();
}

/** A flood against one target for as long as `work` runs: answering before it starts, stopped once it ended. */
export async function duringFlood<T>(options: FloodOptions, work: () => Promise<T>): Promise<{ result: T; flood: FloodReport }> {
  const flood = await startFlood(options);
  let result: T;
  try {
    result = await work();
  } catch (error) {
    await stopProcess(flood.pid, flood.exited, STOP_TIMEOUT_MS);
    throw error;
  }
  return { result, flood: await flood.stop() };
}

export function floodSeconds(report: FloodReport): number {
  return (report.finishedAt - report.startedAt) / 1000;
}

/** Answers with `status` per second of the flood. */
export function answersPerSecond(report: FloodReport, status: string): number {
  return (report.statuses[status] ?? 0) / floodSeconds(report);
}

/** One line: answers per second by status, most first, and what went unanswered. */
export function formatFloodReport(report: FloodReport): string {
  const rates = Object.keys(report.statuses)
    .sort((a, b) => report.statuses[b]! - report.statuses[a]!)
    .map((status) => `${status} ${answersPerSecond(report, status).toFixed(1)}/s (${report.statuses[status]})`);
  return (
    `flood over ${floodSeconds(report).toFixed(1)} s: ${rates.join(', ') || 'no answers'}; ` +
    `${report.errors} connection errors, ${report.timeouts} timeouts`
  );
}

/**
 * The most requests a sliding-window quota of `perSecond` may admit while a flood lasts: every
 * second begun may hold a full window, and the window open when the flood began may already
 * admit a whole quota before its first second is over.
 */
export function mostAdmittedByQuota(perSecond: number, report: FloodReport): number {
  return perSecond * Math.ceil(floodSeconds(report)) + perSecond;
}

/** Rooms the vendor was asked for under the flood's prefix (each once, a retried call counted once). */
export function floodRoomsAtVendor(calls: readonly VendorCall[], roomPrefix: string): number {
  return new Set(calls.map(vendorCallRoomId).filter((roomId) => roomId?.startsWith(`${roomPrefix}-`))).size;
}

/** The nearest folder above this module that holds package.json: the repository, from its sources or from any build. */
function repositoryRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) || !existsSync(path.join(dir, ENTRY))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`${ENTRY} not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}
