import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import {
  Inject,
  Injectable,
  Logger,
  type LoggerService,
  type OnModuleDestroy,
  type OnModuleInit,
  Optional,
} from '@nestjs/common';

/** How often the mounted files are read. A constant on purpose: no configuration variable. */
export const MOUNTED_FILES_POLL_MS = 2000;
/** A changed file is read again after this long and acted on only if both reads agree. */
export const MOUNTED_FILES_SETTLE_MS = 100;
/** Larger files are refused (a Secret holds a few KiB; this guards against a wrong path). */
export const MOUNTED_FILE_MAX_BYTES = 1024 * 1024;

/** Injection token for MountedFilesOptions (tests shorten the intervals). */
export const MOUNTED_FILES_OPTIONS = Symbol('MOUNTED_FILES_OPTIONS');

export interface MountedFilesOptions {
  pollMs?: number;
  settleMs?: number;
  logger?: Pick<LoggerService, 'log' | 'warn'>;
}

/** What the readiness endpoint shows: never any content, key or hash. */
export interface MountedFileStatus {
  /** The variable that named the file (`ZEGO_SERVER_SECRET_FILE`, `API_KEYS_FILE`). */
  variable: string;
  /** The path as configured. */
  file: string;
  /** `stale`: the file cannot be read or is invalid; the last good value stays in use. */
  state: 'current' | 'stale';
  /** Why it is stale (only then). */
  reason?: string;
  /** ISO time of the last reload that changed the value in effect; absent until one happened. */
  reloadedAt?: string;
}

/** A valid value ready to apply, with a digest of the value itself (not of the file). */
export interface ParsedFile<T> {
  value: T;
  fingerprint: string;
}

/** What an owner registers: its file, how to read a value out of it, and how to put it in effect. */
export interface MountedFile<T> {
  variable: string;
  file: string;
  /** Fingerprint of the value in effect at start-up (what the configuration read). */
  applied: string;
  /** The trimmed, non-empty content as a value, or why it cannot be one (never quoting it). */
  parse(text: string): ParsedFile<T> | { problem: string };
  apply(value: T): void;
}

/** One read of a file: its content's digest, or why it could not be read. */
type Observation = { ok: true; digest: string; text: string } | { ok: false; digest: string; reason: string };

interface WatchedFile<T> extends MountedFile<T> {
  /** Digest of the last observation acted on (content or error), so an unchanged file costs a read only. */
  lastSeen?: string;
  state: 'current' | 'stale';
  reason?: string;
  reloadedAt?: string;
}

export const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * Rotation of mounted files (Kubernetes Secrets) without a restart. Each owner registers its file
 * (`watch`, from its constructor: before the first look at start-up); the watcher polls each one by
 * content: each poll opens the path afresh (following the `..data` symlink Kubernetes swaps
 * atomically, and surviving in-place writes and delete + recreate), checks it is a regular file of
 * sane size, reads it and compares a SHA-256 of the content with the last one.
 *
 * A valid change is applied at once through the owner's `apply` and logged as "<VARIABLE>
 * reloaded". A file that cannot be read, is empty or invalid keeps the last good value in use,
 * turns the status `stale` with the reason, and logs one warning per change of state; a later good
 * file makes it `current` again. Before acting on a change the file is read a second time, a moment
 * later: a reader racing a non-atomic write (truncate, then write) must not flap the state. Logs and
 * status name the variable, the path and the reason; never the content.
 */
@Injectable()
export class MountedFileWatcher implements OnModuleInit, OnModuleDestroy {
  private readonly files: WatchedFile<unknown>[] = [];
  private readonly pollMs: number;
  private readonly settleMs: number;
  private readonly logger: Pick<LoggerService, 'log' | 'warn'>;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;

  constructor(@Optional() @Inject(MOUNTED_FILES_OPTIONS) options: MountedFilesOptions = {}) {
    this.pollMs = options.pollMs ?? MOUNTED_FILES_POLL_MS;
    this.settleMs = options.settleMs ?? MOUNTED_FILES_SETTLE_MS;
    this.logger = options.logger ?? new Logger('MountedFiles');
  }

  /** Starts watching a file: its changes go through `parse` and, when valid, `apply`. */
  watch<T>(file: MountedFile<T>): void {
    this.files.push({ ...file, state: 'current' } as WatchedFile<unknown>);
  }

  async onModuleInit(): Promise<void> {
    if (this.files.length === 0) return;
    // A first look now: the file may have changed since the configuration was read.
    await this.checkAll();
    this.schedule();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  status(): MountedFileStatus[] {
    return this.files.map((f) => ({
      variable: f.variable,
      file: f.file,
      state: f.state,
      ...(f.reason === undefined ? {} : { reason: f.reason }),
      ...(f.reloadedAt === undefined ? {} : { reloadedAt: f.reloadedAt }),
    }));
  }

  /** Reads every watched file once and acts on changes (the poll calls this; tests may too). */
  checkAll(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (!this.running) {
      this.running = (async () => {
        for (const file of this.files) {
          try {
            await this.check(file);
          } catch (error) {
            // Not expected (reads report their errors); the name only, messages may quote input.
            this.markStale(file, `could not be checked (${(error as Error).name})`);
          }
        }
      })().finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.checkAll().finally(() => this.schedule());
    }, this.pollMs);
    this.timer.unref();
  }

  private async check(file: WatchedFile<unknown>): Promise<void> {
    const seen = await observe(file.file);
    if (seen.digest === file.lastSeen) return;

    const outcome = seen.ok ? interpret(file, seen.text) : seen;
    const quiet = 'fingerprint' in outcome && outcome.fingerprint === file.applied && file.state === 'current';
    if (!quiet) {
      // About to change something: make sure the file is not in the middle of being written.
      await delay(this.settleMs);
      if (this.stopped) return;
      const again = await observe(file.file);
      if (again.digest !== seen.digest) return; // still moving: the next poll looks again
    }
    file.lastSeen = seen.digest;

    if ('reason' in outcome) {
      this.markStale(file, outcome.reason);
      return;
    }
    const wasStale = file.state === 'stale';
    file.state = 'current';
    file.reason = undefined;
    if (outcome.fingerprint !== file.applied) {
      file.apply(outcome.value);
      file.applied = outcome.fingerprint;
      file.reloadedAt = new Date().toISOString();
      this.logger.log(`${file.variable} reloaded`);
    } else if (wasStale) {
      this.logger.log(`${file.variable} is valid again (value unchanged)`);
    }
  }

  private markStale(file: WatchedFile<unknown>, reason: string): void {
    if (file.state === 'stale' && file.reason === reason) return;
    file.state = 'stale';
    file.reason = reason;
    this.logger.warn(`${file.variable} not reloaded: ${reason}; keeping the last good value`);
  }
}

/** The file's content as the start-up reader takes it, or the reason it cannot be used. */
function interpret(
  file: WatchedFile<unknown>,
  raw: string,
): ParsedFile<unknown> | { reason: string } {
  const text = raw.trim();
  if (text === '') return { reason: 'names an empty file' };
  const parsed = file.parse(text);
  return 'problem' in parsed ? { reason: parsed.problem } : parsed;
}

async function observe(path: string): Promise<Observation> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    const stat = await handle.stat();
    if (!stat.isFile()) return failure('names something that is not a regular file');
    if (stat.size > MOUNTED_FILE_MAX_BYTES) return failure('names a file larger than 1 MiB');
    const text = await handle.readFile('utf8');
    return { ok: true, digest: sha256(text), text };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    return failure(`names a file that cannot be read (${code})`);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function failure(reason: string): Observation {
  return { ok: false, digest: `error:${reason}`, reason };
}

function delay(ms: number): Promise<void> {
  // Not unref'd: the first check runs during start-up, before anything else holds the loop open.
  return new Promise((resolve) => setTimeout(resolve, ms));
}
