/**
 * A registry of the child processes one test harness started and that are still running, so the
 * harness can stop them all (in afterAll) and list them for diagnostics.
 *
 * Each harness keeps its own instance (`stopAllGateways()` stops gateways only, `stopAllRedis()`
 * redis-servers only). A child leaves the registry when it exits. The first `track()` also installs
 * a process 'exit' hook that SIGKILLs the children still registered: a last resort when a run dies
 * without reaching the harness's stop-all. That hook is synchronous, so SIGKILL only (which also
 * ends a SIGSTOPped process), and effective outside jest only: under jest `process` is a sandboxed
 * copy whose 'exit' never fires, and afterAll is the mechanism that counts.
 *
 * Under jest, `track()` also leaves a file per child in ZIM_GW_CHILDREN_DIR until it exits, so the
 * global teardown can kill what a dead worker left behind (see leftover-children.global.js).
 *
 * `exitPromise(child)` is the one promise per child that settles when it closed; `track()`
 * registers it at spawn, so the child's 'close' event can never be missed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Set by jest's global setup (leftover-children.global.js, which reads the files back). */
const CHILDREN_DIR_VARIABLE = 'ZIM_GW_CHILDREN_DIR';

/** Field 22 of /proc/<pid>/stat, as leftover-children.global.js reads it; undefined off Linux. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Leaves the child's pid and start time for the global teardown, until the child exits. */
function leaveRecord(child: ChildProcess): void {
  const dir = process.env[CHILDREN_DIR_VARIABLE];
  const pid = child.pid;
  if (!dir || pid === undefined) return;
  const startTime = processStartTime(pid);
  if (startTime === undefined) return;
  const file = path.join(dir, String(pid));
  const label = child.spawnargs.slice(0, 2).join(' ');
  writeFileSync(file, JSON.stringify({ pid, startTime, label }));
  child.once('exit', () => rmSync(file, { force: true }));
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One promise per child, registered at spawn (by track), so its 'close' event can never be missed. */
const closedPromises = new WeakMap<ChildProcess, Promise<ExitStatus>>();

/** Settles once when the child closed, however that happens. Never rejects. */
export function exitPromise(child: ChildProcess): Promise<ExitStatus> {
  let closed = closedPromises.get(child);
  if (!closed) {
    closed = new Promise((resolve) => {
      // 'close' fires after the streams are drained too, so the captured output is complete.
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
    });
    closedPromises.set(child, closed);
  }
  return closed;
}

/** A script started by ChildRegistry.spawnNodeScript. */
export interface SpawnedScript {
  /** Spawned with piped stdout and stderr. */
  readonly child: ChildProcess & { stdout: Readable; stderr: Readable };
  readonly exited: Promise<ExitStatus>;
  /** The last 20,000 characters it wrote, stdout and stderr together. */
  output(): string;
}

export class ChildRegistry {
  private readonly live = new Set<ChildProcess>();
  private exitHookInstalled = false;

  /**
   * Starts `node script` from `cwd` with `env` plus PATH and HOME, tracked until it exits; what it
   * writes (the last 20,000 characters of stdout and stderr) is kept for readiness lines and
   * failure messages.
   */
  spawnNodeScript(script: string, cwd: string, env: Record<string, string>): SpawnedScript {
    const fullEnv = { ...env };
    if (process.env.PATH !== undefined) fullEnv.PATH = process.env.PATH;
    if (process.env.HOME !== undefined) fullEnv.HOME = process.env.HOME;
    const child = spawn(process.execPath, [script], { cwd, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    this.track(child);
    return { child, exited: exitPromise(child), output: collectOutput(child) };
  }

  /** Registers a freshly spawned child until it exits (and its exitPromise). */
  track(child: ChildProcess): void {
    // Listens for 'close' from the start; the promise (it never rejects) is kept for exitPromise's callers.
    void exitPromise(child);
    leaveRecord(child);
    this.live.add(child);
    child.once('exit', () => this.live.delete(child));
    if (!this.exitHookInstalled) {
      this.exitHookInstalled = true;
      process.once('exit', () => this.killAll());
    }
  }

  /** The children still running (a snapshot: stopping them does not disturb the iteration). */
  running(): ChildProcess[] {
    return [...this.live];
  }

  /** PIDs of the children still running (for diagnostics). */
  pids(): number[] {
    return this.running()
      .map((c) => c.pid)
      .filter((pid): pid is number => pid !== undefined);
  }

  private killAll(): void {
    for (const child of this.live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** SIGTERM, then SIGKILL if the process has not exited within `timeoutMs`; resolves with its exit. */
export async function stopProcess(pid: number, exited: Promise<ExitStatus>, timeoutMs: number): Promise<ExitStatus> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return exited; // already gone
  }
  // The deadline's timer is cleared once the process exited, so it cannot hold the run open.
  const deadline = new AbortController();
  const first = await Promise.race([
    exited,
    sleep(timeoutMs, 'timeout' as const, { signal: deadline.signal }).catch(() => 'exited' as const),
  ]);
  deadline.abort();
  if (first === 'timeout') {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return exited;
}

/** The last 20 000 characters `child` wrote to stdout and stderr, as they come (for a failure's message). */
export function collectOutput(child: ChildProcess): () => string {
  let output = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      output = (output + chunk).slice(-20_000);
    });
  }
  return () => output;
}
