import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { inspect } from 'node:util';
import { loadConfig, type AppConfig } from '../app-config.js';
import { ApiKeyStore } from '../auth/api-key-store.js';
import { ApiKeysFileRotation } from '../auth/api-keys-file-rotation.js';
import { ZegoSecret } from '../zego/zego-secret.js';
import { ZegoSecretFileRotation } from '../zego/zego-secret-file-rotation.js';
import { MOUNTED_FILES_POLL_MS, MountedFileWatcher, type MountedFileStatus } from './mounted-file-watcher.js';

// The watcher with the two files the gateway registers (API_KEYS_FILE, ZEGO_SERVER_SECRET_FILE),
// each through its owner's registration, as the modules wire them.

const POLL_MS = 15;
const SECRET_A = 'SENTINEL-secret-alpha-6e1f0a';
const SECRET_B = 'SENTINEL-secret-bravo-c3d9b4';
const KEY_A = 'SENTINEL-key-alpha-77d2e1';
const KEY_B = 'SENTINEL-key-bravo-0a4c9f';
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const entry = (clientId: string, key: string): string => `${clientId}:${sha256(key)}`;

interface LogEntry {
  level: 'log' | 'warn';
  message: string;
}

interface Rig {
  watcher: MountedFileWatcher;
  keys: ApiKeyStore;
  secret: ZegoSecret;
  logs: LogEntry[];
  config: AppConfig;
}

let dir: string;
const rigs: MountedFileWatcher[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'mounted-secrets-'));
});

afterEach(async () => {
  await Promise.all(rigs.splice(0).map((w) => w.onModuleDestroy()));
  rmSync(dir, { recursive: true, force: true });
});

/** A watcher over real files, with real holders, a short poll and a recording logger. */
async function rig(env: Record<string, string>, { start = true } = {}): Promise<Rig> {
  const config = loadConfig({ ZEGO_APP_ID: '1', ...env });
  const keys = new ApiKeyStore(config);
  const secret = new ZegoSecret(config);
  const logs: LogEntry[] = [];
  const logger = {
    log: (message: unknown) => logs.push({ level: 'log', message: String(message) }),
    warn: (message: unknown) => logs.push({ level: 'warn', message: String(message) }),
  };
  const watcher = new MountedFileWatcher({ pollMs: POLL_MS, settleMs: 2, logger });
  new ZegoSecretFileRotation(config, secret, watcher);
  new ApiKeysFileRotation(config, keys, watcher);
  rigs.push(watcher);
  if (start) await watcher.onModuleInit();
  return { watcher, keys, secret, logs, config };
}

function write(name: string, content: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
}

/** Both files plainly in the temp dir, secret A and key A. */
async function plainRig(): Promise<Rig & { secretFile: string; keysFile: string }> {
  const secretFile = write('secret', `${SECRET_A}\n`);
  const keysFile = write('keys', `# clients\n${entry('orders', KEY_A)}\n`);
  const r = await rig({ ZEGO_SERVER_SECRET_FILE: secretFile, API_KEYS_FILE: keysFile });
  return { ...r, secretFile, keysFile };
}

async function until(condition: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Lets several poll cycles pass (to show that nothing more happens), by counting real checks. */
async function severalPolls(watcher: MountedFileWatcher, cycles = 5): Promise<void> {
  for (let i = 0; i < cycles; i++) await watcher.checkAll();
}

const statusOf = (r: Rig, variable: MountedFileStatus['variable']): MountedFileStatus | undefined =>
  r.watcher.status().find((s) => s.variable === variable);
const warns = (r: Rig): string[] => r.logs.filter((l) => l.level === 'warn').map((l) => l.message);

function expectNoContent(r: Rig): void {
  const views = [
    ...r.logs.map((l) => l.message),
    JSON.stringify(r.watcher.status()),
    inspect(r.watcher.status(), { depth: Infinity }),
  ].join('\n');
  for (const needle of [SECRET_A, SECRET_B, KEY_A, KEY_B, sha256(KEY_A), sha256(KEY_B), 'SENTINEL']) {
    expect(views).not.toContain(needle);
  }
}

describe('MountedFileWatcher', () => {
  it('polls every 2 s by default', () => {
    expect(MOUNTED_FILES_POLL_MS).toBe(2000);
  });

  it('watches nothing, and schedules nothing, when both values are inline', async () => {
    const r = await rig({ ZEGO_SERVER_SECRET: SECRET_A, API_KEYS: entry('orders', KEY_A) });
    expect(r.watcher.status()).toEqual([]);
    expect((r.watcher as unknown as { timer?: NodeJS.Timeout }).timer).toBeUndefined();
  });

  it('starts current, with no reload and no log, when the files did not change', async () => {
    const r = await plainRig();
    expect(r.watcher.status()).toEqual([
      { variable: 'ZEGO_SERVER_SECRET_FILE', file: r.secretFile, state: 'current' },
      { variable: 'API_KEYS_FILE', file: r.keysFile, state: 'current' },
    ]);
    await severalPolls(r.watcher);
    expect(r.logs).toEqual([]);
    expect(r.secret.current().reveal()).toBe(SECRET_A);
  });

  it('applies a new secret written in place, logs "ZEGO_SERVER_SECRET_FILE reloaded" and stamps the time', async () => {
    const r = await plainRig();
    const before = Date.now();
    writeFileSync(r.secretFile, SECRET_B);
    await until(() => r.secret.current().reveal() === SECRET_B, 'new secret in effect');
    const status = statusOf(r, 'ZEGO_SERVER_SECRET_FILE')!;
    expect(status).toEqual({
      variable: 'ZEGO_SERVER_SECRET_FILE',
      file: r.secretFile,
      state: 'current',
      reloadedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(Date.parse(status.reloadedAt!)).toBeGreaterThanOrEqual(before - 1);
    expect(r.logs).toEqual([{ level: 'log', message: 'ZEGO_SERVER_SECRET_FILE reloaded' }]);
    expectNoContent(r);
  });

  it('swaps the API keys: an added key is accepted, a removed one refused', async () => {
    const r = await plainRig();
    writeFileSync(r.keysFile, `${entry('billing', KEY_B)}\n`);
    await until(() => r.keys.authenticate(KEY_B) !== undefined, 'new key accepted');
    expect(r.keys.authenticate(KEY_B)).toEqual({ clientId: 'billing' });
    expect(r.keys.authenticate(KEY_A)).toBeUndefined();
    expect(r.logs).toEqual([{ level: 'log', message: 'API_KEYS_FILE reloaded' }]);
    expect(statusOf(r, 'API_KEYS_FILE')).toEqual(
      expect.objectContaining({ state: 'current', reloadedAt: expect.any(String) }),
    );
    expectNoContent(r);
  });

  it('does not count a change of comments or layout as a reload', async () => {
    const r = await plainRig();
    writeFileSync(r.keysFile, `# rotated by ops\n\n  ${entry('orders', KEY_A)}  ,\n`);
    await severalPolls(r.watcher);
    expect(r.logs).toEqual([]);
    expect(statusOf(r, 'API_KEYS_FILE')).toEqual({ variable: 'API_KEYS_FILE', file: r.keysFile, state: 'current' });
  });

  it('follows a delete and re-create of the file', async () => {
    const r = await plainRig();
    unlinkSync(r.secretFile);
    writeFileSync(r.secretFile, SECRET_B);
    await until(() => r.secret.current().reveal() === SECRET_B, 'recreated secret in effect');
    expect(statusOf(r, 'ZEGO_SERVER_SECRET_FILE')!.state).toBe('current');
  });

  describe('a file that becomes unusable keeps the last good value, is stale, and warns once', () => {
    type Breaker = (file: string) => void;
    const cases: [string, Breaker, RegExp][] = [
      ['empty', (f) => writeFileSync(f, ''), /^names an empty file$/],
      ['blank', (f) => writeFileSync(f, ' \n\n '), /^names an empty file$/],
      ['deleted', (f) => unlinkSync(f), /^names a file that cannot be read \(ENOENT\)$/],
      [
        'replaced by a directory',
        (f) => {
          unlinkSync(f);
          mkdirSync(f);
        },
        /^names something that is not a regular file$/,
      ],
      [
        'a dangling symlink',
        (f) => {
          unlinkSync(f);
          symlinkSync(path.join(path.dirname(f), 'nowhere'), f);
        },
        /^names a file that cannot be read \(ENOENT\)$/,
      ],
    ];

    it.each(cases)('the secret file %s', async (_label, breakFile, reason) => {
      const r = await plainRig();
      writeFileSync(r.secretFile, SECRET_B);
      await until(() => r.secret.current().reveal() === SECRET_B, 'secret B in effect');
      breakFile(r.secretFile);
      await until(() => statusOf(r, 'ZEGO_SERVER_SECRET_FILE')!.state === 'stale', 'stale');
      await severalPolls(r.watcher);
      expect(r.secret.current().reveal()).toBe(SECRET_B);
      const status = statusOf(r, 'ZEGO_SERVER_SECRET_FILE')!;
      expect(status).toEqual({
        variable: 'ZEGO_SERVER_SECRET_FILE',
        file: r.secretFile,
        state: 'stale',
        reason: expect.stringMatching(reason),
        reloadedAt: expect.any(String),
      });
      expect(warns(r)).toEqual([
        `ZEGO_SERVER_SECRET_FILE not reloaded: ${status.reason}; keeping the last good value`,
      ]);
      expect(statusOf(r, 'API_KEYS_FILE')!.state).toBe('current');
      expectNoContent(r);
    });

    it.each(cases)('the API keys file %s', async (_label, breakFile, reason) => {
      const r = await plainRig();
      breakFile(r.keysFile);
      await until(() => statusOf(r, 'API_KEYS_FILE')!.state === 'stale', 'stale');
      await severalPolls(r.watcher);
      expect(r.keys.authenticate(KEY_A)).toEqual({ clientId: 'orders' });
      expect(statusOf(r, 'API_KEYS_FILE')).toEqual({
        variable: 'API_KEYS_FILE',
        file: r.keysFile,
        state: 'stale',
        reason: expect.stringMatching(reason),
      });
      expect(warns(r)).toHaveLength(1);
      expect(warns(r)[0]).toMatch(/^API_KEYS_FILE not reloaded: .+; keeping the last good value$/);
    });

    it.each([
      ['a malformed entry', () => `${entry('orders', KEY_A)}\nbilling:${KEY_B}\n`, /entry 2 must be client-id:sha256-hex/],
      ['a repeated key', () => `${entry('orders', KEY_A)},${entry('billing', KEY_A)}`, /entry 2 reuses the key/],
      ['comments only', () => '# nobody\n', /holds no client entries/],
    ])('API keys with %s are refused by the start-up rules, naming the entry, not its content', async (_l, text, reason) => {
      const r = await plainRig();
      writeFileSync(r.keysFile, text());
      await until(() => statusOf(r, 'API_KEYS_FILE')!.state === 'stale', 'stale');
      expect(statusOf(r, 'API_KEYS_FILE')!.reason).toMatch(reason);
      expect(r.keys.authenticate(KEY_A)).toEqual({ clientId: 'orders' });
      expect(r.keys.authenticate(KEY_B)).toBeUndefined();
      expect(warns(r)).toHaveLength(1);
      expectNoContent(r);
    });
  });

  it('warns once per change of state: stale, another reason, current, stale again', async () => {
    const r = await plainRig();
    writeFileSync(r.keysFile, '');
    await until(() => warns(r).length === 1, 'first warning');
    await severalPolls(r.watcher);
    writeFileSync(r.keysFile, 'not-an-entry');
    await until(() => warns(r).length === 2, 'second warning (other reason)');
    await severalPolls(r.watcher);
    // Recovery with the same value as the last good one: current again, no reload.
    writeFileSync(r.keysFile, entry('orders', KEY_A));
    await until(() => statusOf(r, 'API_KEYS_FILE')!.state === 'current', 'current again');
    expect(statusOf(r, 'API_KEYS_FILE')).toEqual({ variable: 'API_KEYS_FILE', file: r.keysFile, state: 'current' });
    unlinkSync(r.keysFile);
    await until(() => warns(r).length === 3, 'third warning');
    await severalPolls(r.watcher);
    expect(warns(r)).toEqual([
      'API_KEYS_FILE not reloaded: names an empty file; keeping the last good value',
      expect.stringMatching(/^API_KEYS_FILE not reloaded: entry 1 must be client-id:sha256-hex .*; keeping the last good value$/),
      'API_KEYS_FILE not reloaded: names a file that cannot be read (ENOENT); keeping the last good value',
    ]);
    expect(r.logs.filter((l) => l.level === 'log').map((l) => l.message)).toEqual([
      'API_KEYS_FILE is valid again (value unchanged)',
    ]);
  });

  it('recovers with a new value: current again, reloaded, new value in effect', async () => {
    const r = await plainRig();
    writeFileSync(r.secretFile, '\n');
    await until(() => statusOf(r, 'ZEGO_SERVER_SECRET_FILE')!.state === 'stale', 'stale');
    expect(r.secret.current().reveal()).toBe(SECRET_A);
    writeFileSync(r.secretFile, `  ${SECRET_B}  \n`);
    await until(() => statusOf(r, 'ZEGO_SERVER_SECRET_FILE')!.state === 'current', 'current');
    expect(r.secret.current().reveal()).toBe(SECRET_B);
    expect(statusOf(r, 'ZEGO_SERVER_SECRET_FILE')).toEqual({
      variable: 'ZEGO_SERVER_SECRET_FILE',
      file: r.secretFile,
      state: 'current',
      reloadedAt: expect.any(String),
    });
    expect(r.logs.map((l) => `${l.level} ${l.message}`)).toEqual([
      'warn ZEGO_SERVER_SECRET_FILE not reloaded: names an empty file; keeping the last good value',
      'log ZEGO_SERVER_SECRET_FILE reloaded',
    ]);
    expectNoContent(r);
  });

  it('follows a Kubernetes Secret update: the ..data symlink swapped to a new timestamped directory', async () => {
    // The layout the kubelet writes: <mount>/<key> -> ..data/<key>, ..data -> ..<timestamp>.
    const mount = path.join(dir, 'mount');
    mkdirSync(mount);
    const version = (name: string, secret: string, keys: string): void => {
      mkdirSync(path.join(mount, name));
      writeFileSync(path.join(mount, name, 'server-secret'), secret);
      writeFileSync(path.join(mount, name, 'api-keys'), keys);
    };
    const swapData = (name: string): void => {
      symlinkSync(name, path.join(mount, '..data_tmp'));
      renameSync(path.join(mount, '..data_tmp'), path.join(mount, '..data')); // atomic
    };
    version('..2024_05_01_10_00_00.000000001', SECRET_A, entry('orders', KEY_A));
    swapData('..2024_05_01_10_00_00.000000001');
    symlinkSync(path.join('..data', 'server-secret'), path.join(mount, 'server-secret'));
    symlinkSync(path.join('..data', 'api-keys'), path.join(mount, 'api-keys'));
    const r = await rig({
      ZEGO_SERVER_SECRET_FILE: path.join(mount, 'server-secret'),
      API_KEYS_FILE: path.join(mount, 'api-keys'),
    });
    expect(r.secret.current().reveal()).toBe(SECRET_A);

    version('..2024_05_01_10_05_00.000000002', SECRET_B, entry('billing', KEY_B));
    swapData('..2024_05_01_10_05_00.000000002');
    rmSync(path.join(mount, '..2024_05_01_10_00_00.000000001'), { recursive: true });

    await until(
      () => r.secret.current().reveal() === SECRET_B && r.keys.authenticate(KEY_B) !== undefined,
      'both values from the new directory',
    );
    expect(r.keys.authenticate(KEY_A)).toBeUndefined();
    expect(r.watcher.status().map((s) => s.state)).toEqual(['current', 'current']);
    expect(r.logs.map((l) => l.message).sort()).toEqual(['API_KEYS_FILE reloaded', 'ZEGO_SERVER_SECRET_FILE reloaded']);
    expect(r.watcher.status().map((s) => s.file)).toEqual([
      path.join(mount, 'server-secret'),
      path.join(mount, 'api-keys'),
    ]);
    expectNoContent(r);
  });

  it('applies at start a change made between reading the configuration and starting the watcher', async () => {
    const secretFile = write('secret', SECRET_A);
    const keysFile = write('keys', entry('orders', KEY_A));
    const r = await rig({ ZEGO_SERVER_SECRET_FILE: secretFile, API_KEYS_FILE: keysFile }, { start: false });
    writeFileSync(secretFile, SECRET_B);
    await r.watcher.onModuleInit();
    expect(r.secret.current().reveal()).toBe(SECRET_B);
    expect(r.logs).toEqual([{ level: 'log', message: 'ZEGO_SERVER_SECRET_FILE reloaded' }]);
  });

  it('unrefs its timer, and stops polling on destroy', async () => {
    const r = await plainRig();
    const timer = (r.watcher as unknown as { timer?: NodeJS.Timeout }).timer;
    expect(timer).toBeDefined();
    expect(timer!.hasRef()).toBe(false);
    await r.watcher.onModuleDestroy();
    expect((r.watcher as unknown as { timer?: NodeJS.Timeout }).timer).toBeUndefined();
    writeFileSync(r.secretFile, SECRET_B);
    // Several poll intervals' worth of real time: nothing may happen any more.
    const waitUntil = performance.now() + POLL_MS * 6;
    await until(() => performance.now() > waitUntil, 'six poll intervals');
    expect(r.secret.current().reveal()).toBe(SECRET_A);
    expect(r.logs).toEqual([]);
  });
});
