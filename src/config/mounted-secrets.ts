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
import { ApiKeyStore } from '../auth/api-key-store.js';
import { ZegoSecret } from '../zego/zego-secret.js';
import { parseApiKeyEntries, type ApiKeyEntry } from './api-key-entries.js';
import { APP_CONFIG, type AppConfig } from './app-config.js';
import { Secret } from './secret.js';

/** How often the mounted files are read. A constant on purpose: no configuration variable. */
export const SECRET_FILES_POLL_MS = 2000;
/** A changed file is read again after this long and acted on only if both reads agree. */
export const SECRET_FILES_SETTLE_MS = 100;
/** Larger files are refused (a Secret holds a few KiB; this guards against a wrong path). */
export const SECRET_FILE_MAX_BYTES = 1024 * 1024;

/** Injection token for MountedSecretsOptions (tests shorten the intervals). */
export const MOUNTED_SECRETS_OPTIONS = Symbol('MOUNTED_SECRETS_OPTIONS');

export interface MountedSecretsOptions {
  pollMs?: number;
  settleMs?: number;
  logger?: Pick<LoggerService, 'log' | 'warn'>;
}

export type MountedSecretVariable = 'ZEGO_SERVER_SECRET_FILE' | 'API_KEYS_FILE';

/** What the readiness endpoint shows: never any content, key or hash. */
export interface MountedSecretStatus {
  variable: MountedSecretVariable;
  /** The path as configured. */
  file: string;
  /** `stale`: the file cannot be read or is invalid; the last good value stays in use. */
  state: 'current' | 'stale';
  /** Why it is stale (only then). */
  reason?: string;
  /** ISO time of the last reload that changed the value in effect; absent until one happened. */
  reloadedAt?: string;
}

/** One read of a file: its content's digest, or why it could not be read. */
type Observation = { ok: true; digest: string; text: string } | { ok: false; digest: string; reason: string };

/** A valid value ready to apply, with a digest of the value itself (not of the file). */
interface Parsed<T> {
  value: T;
  fingerprint: string;
}

interface WatchedFile<T> {
  variable: MountedSecretVariable;
  file: string;
  parse(text: string): Parsed<T> | { problem: string };
  apply(value: T): void;
  /** Fingerprint of the value in effect. */
  applied: string;
  /** Digest of the last observation acted on (content or error), so an unchanged file costs a read only. */
  lastSeen?: string;
  state: 'current' | 'stale';
  reason?: string;
  reloadedAt?: string;
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * Rotation of mounted Secrets without a restart. Polls ZEGO_SERVER_SECRET_FILE and API_KEYS_FILE
 * (when configured) by content: each poll opens the path afresh (following the `..data` symlink
 * Kubernetes swaps atomically, and surviving in-place writes and delete + recreate), checks it is
 * a regular file of sane size, reads it and compares a SHA-256 of the content with the last one.
 *
 * A valid change is applied at once (the secret to ZegoSecret, the keys to ApiKeyStore.replace,
 * checked with the start-up rules) and logged as "<VARIABLE> reloaded". A file that cannot be
 * read, is empty or invalid keeps the last good value in use, turns the status `stale` with the
 * reason, and logs one warning per change of state; a later good file makes it `current` again.
 * Before acting on a change the file is read a second time, a moment later: a reader racing a
 * non-atomic write (truncate, then write) must not flap the state. Logs and status name the
 * variable, the path and the reason; never the content.
 */
@Injectable()
export class MountedSecretsWatcher implements OnModuleInit, OnModuleDestroy {
  private readonly files: WatchedFile<unknown>[] = [];
  private readonly pollMs: number;
  private readonly settleMs: number;
  private readonly logger: Pick<LoggerService, 'log' | 'warn'>;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    apiKeys: ApiKeyStore,
    zegoSecret: ZegoSecret,
    @Optional() @Inject(MOUNTED_SECRETS_OPTIONS) options: MountedSecretsOptions = {},
  ) {
    this.pollMs = options.pollMs ?? SECRET_FILES_POLL_MS;
    this.settleMs = options.settleMs ?? SECRET_FILES_SETTLE_MS;
    this.logger = options.logger ?? new Logger('MountedSecrets');

    const secretFile = config.zego.serverSecretFile;
    if (secretFile !== undefined) {
      this.watch<Secret>({
        variable: 'ZEGO_SERVER_SECRET_FILE',
        file: secretFile,
        applied: sha256(config.zego.serverSecret.reveal()),
        parse: (text) => ({ value: new Secret(text), fingerprint: sha256(text) }),
        apply: (secret) => zegoSecret.replace(secret),
      });
    }
    const keysFile = config.auth.apiKeysFile;
    if (keysFile !== undefined) {
      this.watch<readonly ApiKeyEntry[]>({
        variable: 'API_KEYS_FILE',
        file: keysFile,
        applied: keysFingerprint(config.auth.apiKeys),
        parse: (text) => {
          const { entries, problems } = parseApiKeyEntries(text, 'API_KEYS_FILE');
          if (problems.length > 0) return { problem: problems.map((p) => p.reason).join('; ') };
          return { value: entries, fingerprint: keysFingerprint(entries) };
        },
        apply: (entries) => apiKeys.replace(entries),
      });
    }
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

  status(): MountedSecretStatus[] {
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

  private watch<T>(file: Omit<WatchedFile<T>, 'state'>): void {
    this.files.push({ ...file, state: 'current' } as WatchedFile<unknown>);
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
): Parsed<unknown> | { reason: string } {
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
    if (stat.size > SECRET_FILE_MAX_BYTES) return failure('names a file larger than 1 MiB');
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

function keysFingerprint(entries: readonly ApiKeyEntry[]): string {
  return sha256(entries.map((e) => `${e.clientId}:${e.keySha256.toString('hex')}`).join('\n'));
}

function delay(ms: number): Promise<void> {
  // Not unref'd: the first check runs during start-up, before anything else holds the loop open.
  return new Promise((resolve) => setTimeout(resolve, ms));
}
