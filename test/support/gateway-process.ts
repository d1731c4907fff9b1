/**
 * Runs the REAL built gateway (`node dist/main.js`, from `npm run build`) as a child process, for
 * the end-to-end tests, the multi-replica fleet tests (test/fleet/) and the benchmarks.
 *
 * - The child gets a clean environment: PATH, HOME and the variables given, nothing else (no
 *   NODE_OPTIONS from jest, no developer's .env). PORT defaults to 0, so the OS picks a free port;
 *   SHUTDOWN_GRACE_MS defaults to 0, so stop() does not sit out the drain period;
 *   the port is read from the gateway's own "listening on port N" log line.
 * - stdout and stderr are captured for the whole life of the process and stay readable after it
 *   exited, so a suite can scan them (e.g. for leaked secrets) in a final test.
 * - Every child is tracked in this module's own registry (a `ChildRegistry`, child-registry.ts):
 *   `stopAllGateways()` stops the ones still running, and no redis-server. Call it in afterAll:
 *   jest runs afterAll also when tests failed, and that is the mechanism that counts under jest.
 *   (The registry's process 'exit' hook SIGKILLs survivors when this module runs outside jest;
 *   under jest `process` is a sandboxed copy whose 'exit' never fires. Ctrl-C reaches the
 *   children anyway: they share the terminal's process group.)
 * - No fixed sleeps: start-up waits for the log line (with a deadline), stop waits for the exit
 *   event (with a deadline, then SIGKILL).
 * - With `ZIM_GW_EMISSIONS_DIR` set (jest's global setup sets it), every child's stdout and stderr
 *   are also appended, as they arrive, to files in that directory: the global teardown scans them
 *   for secrets (see `recordEmission` in secret-scan.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChildRegistry, exitPromise, type ExitStatus } from './child-registry.js';
import { recordEmission } from './secret-scan.js';

// ------------------------------------------------------------------ types

/** How a child ended: its exit code, or the signal that ended it (see child-registry.ts). */
export type { ExitStatus };

/** One line of the gateway's JSON log: {"level","pid","timestamp","message","context"}. */
export interface LogLine {
  level?: string;
  pid?: number;
  timestamp?: number;
  message?: unknown;
  context?: string;
  /** Which stream it came from. */
  stream: 'stdout' | 'stderr';
  /** The raw text of the line. */
  raw: string;
  [field: string]: unknown;
}

export interface GatewayProcess {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Everything the child wrote so far (also after it exited). */
  stdout(): string;
  stderr(): string;
  /** Both streams' lines parsed as JSON where possible (non-JSON lines have only stream/raw). */
  logLines(): LogLine[];
  /** How many log lines were seen so far: pass it as `since` to look only at the lines after it. */
  logMark(): number;
  /**
   * Resolves with the first log line (already written or still to come, from index `since` on)
   * matching the predicate; rejects after `timeoutMs` (default 5 s) or when the process exited
   * without one.
   */
  waitForLog(
    predicate: (line: LogLine) => boolean,
    options?: { timeoutMs?: number; since?: number },
  ): Promise<LogLine>;
  /** SIGTERM, wait for exit (deadline), then SIGKILL. Resolves with the exit code (null when ended by a signal). */
  stop(timeoutMs?: number): Promise<number | null>;
  /** Settles once when the child exits, however that happens. Never rejects. */
  readonly exited: Promise<ExitStatus>;
  /** True until the child exited. */
  isRunning(): boolean;
}

export interface StartOptions {
  /** Deadline for the "listening on port" log line. Default 15 s. */
  startTimeoutMs?: number;
  /** Working directory and the location of dist/main.js. Default: the repository root. */
  cwd?: string;
  /** Script to run, relative to cwd. Default dist/main.js. */
  script?: string;
  /** Node's own options, before the script (the image's command has some). Default none. */
  nodeOptions?: string[];
}

export interface ExitResult extends ExitStatus {
  stdout: string;
  stderr: string;
}

// ------------------------------------------------------------------ constants

/** The repository root: this file lives in <root>/test/support. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEFAULT_SCRIPT = path.join('dist', 'main.js');
const LISTENING = /listening on port (\d+)/;
const DEFAULT_START_TIMEOUT_MS = 15_000;
const DEFAULT_STOP_TIMEOUT_MS = 5_000;

/**
 * Node's own options in `npm start` (the image's command is held to the same by the Dockerfile
 * spec): source maps and the tracing preload. The quick start and the tracing specs start the
 * gateway with these, so it loads the way production loads it.
 */
export function npmStartNodeOptions(): string[] {
  const packageJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const [node, ...rest] = packageJson.scripts.start.split(/\s+/);
  if (node !== 'node' || rest.at(-1) !== DEFAULT_SCRIPT) throw new Error(`npm start is not \`node [options] ${DEFAULT_SCRIPT}\``);
  return rest.slice(0, -1);
}

// ------------------------------------------------------------------ registry of live children

/** This harness's children only: stop-all here never touches the other harnesses' processes. */
const children = new ChildRegistry();

/** Every gateway child still running (for diagnostics). */
export function runningGatewayPids(): number[] {
  return children.pids();
}

/** Stops every gateway this module started that is still running. Safe to call repeatedly. */
export async function stopAllGateways(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
  await Promise.all(children.running().map((child) => stopChild(child, timeoutMs)));
}

// ------------------------------------------------------------------ start / run

function cleanEnv(env: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {};
  if (process.env.PATH !== undefined) base.PATH = process.env.PATH;
  if (process.env.HOME !== undefined) base.HOME = process.env.HOME;
  // No drain period before the listener closes (SIGTERM), unless a test asks for one: stop() is quick.
  return { ...base, PORT: '0', SHUTDOWN_GRACE_MS: '0', ...env };
}

function spawnGateway(env: Record<string, string>, options: StartOptions): ChildProcess {
  const cwd = options.cwd ?? REPO_ROOT;
  const script = options.script ?? DEFAULT_SCRIPT;
  if (!existsSync(path.resolve(cwd, script))) {
    throw new Error(`${path.resolve(cwd, script)} does not exist: run \`npm run build\` first`);
  }
  const child = spawn(process.execPath, [...(options.nodeOptions ?? []), script], {
    cwd,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.track(child);
  return child;
}

/** Collects a stream into a string and into parsed lines, and wakes waiters on every new line. */
class OutputCapture {
  private readonly text = { stdout: '', stderr: '' };
  private readonly partial = { stdout: '', stderr: '' };
  readonly lines: LogLine[] = [];
  private readonly listeners = new Set<(line: LogLine, index: number) => void>();

  /** Emission file names per stream (see recordEmission), fixed at spawn. */
  private readonly emissionKinds = { stdout: '', stderr: '' };

  constructor(child: ChildProcess) {
    this.emissionKinds.stdout = `child-${child.pid ?? 'unknown'}.stdout`;
    this.emissionKinds.stderr = `child-${child.pid ?? 'unknown'}.stderr`;
    for (const stream of ['stdout', 'stderr'] as const) {
      const source = child[stream];
      if (!source) continue;
      source.setEncoding('utf8');
      source.on('data', (chunk: string) => this.append(stream, chunk));
      source.on('end', () => this.flush(stream));
    }
  }

  get stdout(): string {
    return this.text.stdout;
  }

  get stderr(): string {
    return this.text.stderr;
  }

  /** Calls the listener for every line seen from now on; returns the unsubscribe function. */
  subscribe(listener: (line: LogLine, index: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private append(stream: 'stdout' | 'stderr', chunk: string): void {
    this.text[stream] += chunk;
    recordEmission(this.emissionKinds[stream], chunk);
    const pieces = (this.partial[stream] + chunk).split('\n');
    this.partial[stream] = pieces.pop() ?? '';
    for (const piece of pieces) this.emit(stream, piece);
  }

  private flush(stream: 'stdout' | 'stderr'): void {
    if (this.partial[stream] !== '') this.emit(stream, this.partial[stream]);
    this.partial[stream] = '';
  }

  private emit(stream: 'stdout' | 'stderr', raw: string): void {
    const text = raw.replace(/\r$/, '');
    if (text.trim() === '') return;
    const line = parseLine(stream, text);
    const index = this.lines.push(line) - 1;
    for (const listener of [...this.listeners]) listener(line, index);
  }
}

function parseLine(stream: 'stdout' | 'stderr', raw: string): LogLine {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      return { ...(parsed as Record<string, unknown>), stream, raw };
    }
  } catch {
    // not JSON: kept as raw text
  }
  return { stream, raw };
}

async function stopChild(child: ChildProcess, timeoutMs: number): Promise<ExitStatus> {
  const exited = exitPromise(child);
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill('SIGTERM');
  const timer = new AbortController();
  const deadline = new Promise<'timeout'>((resolve) => {
    const handle = setTimeout(() => resolve('timeout'), timeoutMs);
    timer.signal.addEventListener('abort', () => clearTimeout(handle));
  });
  const first = await Promise.race([exited, deadline]);
  timer.abort();
  if (first === 'timeout') child.kill('SIGKILL');
  return exited;
}

function describeOutput(capture: OutputCapture): string {
  const tail = (text: string): string => (text.length > 4000 ? `…${text.slice(-4000)}` : text);
  return `\n--- stdout ---\n${tail(capture.stdout)}\n--- stderr ---\n${tail(capture.stderr)}`;
}

/** A JSON line's message; a plain-text line (the fake vendor's) as it is. */
function lineMessage(line: LogLine): string {
  if (typeof line.message === 'string') return line.message;
  return line.level === undefined ? line.raw : '';
}

/**
 * Starts `node dist/main.js` with a clean environment plus `env` (PORT=0 unless given), and
 * resolves once the gateway logged that it listens. Rejects (after killing the child) when the
 * process exits first or the deadline passes; the rejection carries the captured output.
 */
export async function startGateway(
  env: Record<string, string>,
  options: StartOptions = {},
): Promise<GatewayProcess> {
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const child = spawnGateway(env, options);
  const capture = new OutputCapture(child);
  const exited = exitPromise(child);
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`gateway did not log "listening on port" within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      const unsubscribe = capture.subscribe((line) => {
        const match = LISTENING.exec(lineMessage(line));
        if (match) {
          clearTimeout(timer);
          unsubscribe();
          resolve(Number(match[1]));
        }
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        unsubscribe();
        reject(
          new Error(
            `gateway exited before listening (code ${code}, signal ${signal})` +
              (spawnError ? `: ${spawnError.message}` : ''),
          ),
        );
      });
    });
  } catch (error) {
    await stopChild(child, DEFAULT_STOP_TIMEOUT_MS);
    throw new Error(`${(error as Error).message}${describeOutput(capture)}`, { cause: error });
  }

  const gateway: GatewayProcess = {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    stdout: () => capture.stdout,
    stderr: () => capture.stderr,
    logLines: () => [...capture.lines],
    logMark: () => capture.lines.length,
    waitForLog: (predicate, { timeoutMs = 5_000, since = 0 } = {}) =>
      waitForLine(capture, exited, (line, index) => index >= since && predicate(line), timeoutMs),
    stop: async (timeoutMs = DEFAULT_STOP_TIMEOUT_MS) => (await stopChild(child, timeoutMs)).code,
    exited,
    isRunning: () => child.exitCode === null && child.signalCode === null,
  };
  return gateway;
}

function waitForLine(
  capture: OutputCapture,
  exited: Promise<ExitStatus>,
  predicate: (line: LogLine, index: number) => boolean,
  timeoutMs: number,
): Promise<LogLine> {
  const seen = capture.lines.find(predicate);
  if (seen) return Promise.resolve(seen);
  return new Promise<LogLine>((resolve, reject) => {
    let settled = false;
    const finish = (action: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unsubscribe();
      action();
    };
    const timer = setTimeout(
      () => finish(() => reject(new Error(`no matching log line within ${timeoutMs} ms${describeOutput(capture)}`))),
      timeoutMs,
    );
    const unsubscribe = capture.subscribe((line, index) => {
      if (predicate(line, index)) finish(() => resolve(line));
    });
    void exited.then(() => {
      // The streams are drained at 'close': a last look, then give up.
      const late = capture.lines.find(predicate);
      finish(() =>
        late ? resolve(late) : reject(new Error(`gateway exited without a matching log line${describeOutput(capture)}`)),
      );
    });
  });
}

/**
 * For configuration tests: starts the gateway and resolves with its exit code and output. Rejects
 * (after stopping it) if it starts listening instead, or does not exit within the deadline.
 */
export async function runGatewayExpectingExit(
  env: Record<string, string>,
  options: StartOptions & { exitTimeoutMs?: number } = {},
): Promise<ExitResult> {
  const exitTimeoutMs = options.exitTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const child = spawnGateway(env, options);
  const capture = new OutputCapture(child);
  const exited = exitPromise(child);
  const outcome = await new Promise<ExitStatus | Error>((resolve) => {
    const timer = setTimeout(
      () => resolve(new Error(`gateway did not exit within ${exitTimeoutMs} ms`)),
      exitTimeoutMs,
    );
    const unsubscribe = capture.subscribe((line) => {
      if (LISTENING.test(lineMessage(line))) {
        clearTimeout(timer);
        unsubscribe();
        resolve(new Error('gateway started listening instead of exiting'));
      }
    });
    void exited.then((status) => {
      clearTimeout(timer);
      unsubscribe();
      resolve(status);
    });
  });
  if (outcome instanceof Error) {
    await stopChild(child, DEFAULT_STOP_TIMEOUT_MS);
    throw new Error(`${outcome.message}${describeOutput(capture)}`);
  }
  return { ...outcome, stdout: capture.stdout, stderr: capture.stderr };
}
