/**
 * End to end: the built gateway (`node dist/main.js`) picks up a changed API_KEYS_FILE and
 * ZEGO_SERVER_SECRET_FILE within a few seconds, without a restart; a file made invalid keeps the
 * last good value in use and is reported with a warning that names the variable, never the
 * content. The secret is mounted the way Kubernetes mounts a Secret (`<key>` -> `..data/<key>`,
 * `..data` -> a timestamped directory, swapped atomically on update); the keys file is rewritten
 * in place.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { apiKeyEntry, sha256Hex } from './support/api-keys.js';
import { waitFor } from './support/async-probes.js';
import type { GatewayProcess, LogLine } from './support/gateway-process.js';
import { HttpRecorder, type RecordedExchange } from './support/http-recorder.js';
import { scenario, withFakeZim } from './support/scenario.js';
import { findLeaks, gatewayOutputs } from './support/secret-scan.js';

const APP_ID = 2718281828;
const SECRET_A = 'SENTINEL-secret-rotation-a-1e5b7c9d3f';
const SECRET_B = 'SENTINEL-secret-rotation-b-8a2c4e6f0d';
const KEY_ALPHA = 'sk-SENTINEL-rotation-alpha-5c1e9a7b3d';
const KEY_BETA = 'sk-SENTINEL-rotation-beta-2f8d6b4a0c';
const GARBAGE = 'SENTINEL-not-an-entry-4d7e';
/** The gateway polls every 2 s; this leaves room for a slow machine. */
const ROTATION_DEADLINE_MS = 12_000;
const TIMEOUT = 45_000;

// Vendor A, secret A and svc-alpha's key; each describe's gateway swaps part of that for a file
// (the keys; the secret, with vendor B).
const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET_A },
  apiKeys: { 'svc-alpha': KEY_ALPHA },
  env: { CLIENT_RATE_LIMIT: '100000' },
});
const fakeB = withFakeZim({ appId: APP_ID, serverSecret: SECRET_B });
const http = new HttpRecorder();
let tmp: string;
let roomCounter = 0;

function post(gateway: GatewayProcess, key: string): Promise<RecordedExchange> {
  return http.request(`${gateway.url}/rooms`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ roomId: `rotation-${++roomCounter}`, fromUserId: 'ops-bot' }),
  });
}

/** Repeats the request until it is answered with `status`, failing after the deadline. */
async function eventually(gateway: GatewayProcess, key: string, status: number, what: string): Promise<RecordedExchange> {
  let last: RecordedExchange | undefined;
  await waitFor(
    async () => {
      last = await post(gateway, key);
      return last.status === status;
    },
    { timeoutMs: ROTATION_DEADLINE_MS, intervalMs: 200, what: `${what}: HTTP ${status}` },
  );
  return last!;
}

const isWarnAbout = (variable: string) => (line: LogLine): boolean =>
  line.level === 'warn' && typeof line.message === 'string' && line.message.startsWith(`${variable} `);
const isReloaded = (variable: string) => (line: LogLine): boolean => line.message === `${variable} reloaded`;

/** A Secret volume as the kubelet lays it out, updated by swapping `..data` atomically. */
class MountedSecret {
  private version = 0;

  constructor(
    private readonly dir: string,
    private readonly key: string,
  ) {
    mkdirSync(dir);
  }

  get file(): string {
    return path.join(this.dir, this.key);
  }

  write(content: string): void {
    const previous = this.version === 0 ? undefined : this.versionDir(this.version);
    const next = this.versionDir(++this.version);
    mkdirSync(path.join(this.dir, next));
    writeFileSync(path.join(this.dir, next, this.key), content);
    symlinkSync(next, path.join(this.dir, '..data_tmp'));
    renameSync(path.join(this.dir, '..data_tmp'), path.join(this.dir, '..data'));
    if (previous === undefined) symlinkSync(path.join('..data', this.key), this.file);
    else rmSync(path.join(this.dir, previous), { recursive: true });
  }

  private versionDir(n: number): string {
    return `..2025_01_01_00_00_${String(n).padStart(2, '0')}.${String(n).padStart(9, '0')}`;
  }
}

beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'gateway-rotation-e2e-'));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('API_KEYS_FILE rewritten in place', () => {
  let gw: GatewayProcess;
  let keysFile: string;

  beforeAll(async () => {
    keysFile = path.join(tmp, 'api-keys');
    writeFileSync(keysFile, `# clients\n${apiKeyEntry('svc-alpha', KEY_ALPHA)}\n`);
    gw = await s.startGateway({ API_KEYS: undefined, API_KEYS_FILE: keysFile });
  }, TIMEOUT);

  it(
    'a key added to the file is accepted within seconds; a key removed gets 401',
    async () => {
      expect((await post(gw, KEY_ALPHA)).status).toBe(201);
      expect((await post(gw, KEY_BETA)).status).toBe(401);

      const mark = gw.logMark();
      writeFileSync(keysFile, `${apiKeyEntry('svc-alpha', KEY_ALPHA)}\n${apiKeyEntry('svc-beta', KEY_BETA)}\n`);
      await eventually(gw, KEY_BETA, 201, 'added key accepted');
      expect((await post(gw, KEY_ALPHA)).status).toBe(201);
      await gw.waitForLog(isReloaded('API_KEYS_FILE'), { since: mark });

      writeFileSync(keysFile, `${apiKeyEntry('svc-beta', KEY_BETA)}\n`);
      const refused = await eventually(gw, KEY_ALPHA, 401, 'removed key refused');
      expect(refused.headers['www-authenticate']).toMatch(/^Bearer/);
      expect((await post(gw, KEY_BETA)).status).toBe(201);
    },
    TIMEOUT,
  );

  it(
    'a file made invalid keeps the last good keys and logs one warning naming the variable, not the content',
    async () => {
      const mark = gw.logMark();
      writeFileSync(keysFile, `${apiKeyEntry('svc-alpha', KEY_ALPHA)}\nsvc-x:${GARBAGE}\n`);
      const warning = await gw.waitForLog(isWarnAbout('API_KEYS_FILE'), { since: mark, timeoutMs: ROTATION_DEADLINE_MS });
      expect(warning.message).toMatch(/^API_KEYS_FILE not reloaded: entry 2 must be client-id:sha256-hex/);
      expect(warning.message).toMatch(/keeping the last good value$/);

      // Still serving with the last good set: beta in, alpha (only in the invalid file) out.
      expect((await post(gw, KEY_BETA)).status).toBe(201);
      expect((await post(gw, KEY_ALPHA)).status).toBe(401);

      // Two more polls: no second warning for the same state.
      const pollsLater = Date.now() + 4_500;
      await waitFor(() => Date.now() > pollsLater, { timeoutMs: 6_000, intervalMs: 100, what: 'two more polls' });
      expect(gw.logLines().slice(mark).filter(isWarnAbout('API_KEYS_FILE'))).toHaveLength(1);

      // Fixed again: the new set applies.
      writeFileSync(keysFile, `${apiKeyEntry('svc-alpha', KEY_ALPHA)}\n`);
      await eventually(gw, KEY_ALPHA, 201, 'repaired file applied');
      expect((await post(gw, KEY_BETA)).status).toBe(401);
    },
    TIMEOUT,
  );
});

describe('ZEGO_SERVER_SECRET_FILE as a Kubernetes Secret volume', () => {
  let gw: GatewayProcess;
  let secret: MountedSecret;

  beforeAll(async () => {
    secret = new MountedSecret(path.join(tmp, 'zego-secret'), 'server-secret');
    secret.write(SECRET_A);
    // The vendor behind this gateway (fake B) holds secret B; the mounted file still says A.
    gw = await s.startGateway({
      ZEGO_SERVER_SECRET: undefined,
      ZEGO_SERVER_SECRET_FILE: secret.file,
      ZEGO_API_BASE_URL: fakeB.url,
    });
  }, TIMEOUT);

  it(
    'signs with the old secret until the Secret is updated, then with the new one, without a restart',
    async () => {
      const refused = await post(gw, KEY_ALPHA);
      expect(refused.status).toBe(502);
      expect((refused.json as { zegoCode?: number }).zegoCode).toBe(100000005);
      expect(fakeB.calls.at(-1)!.code).toBe(100000005);

      const mark = gw.logMark();
      secret.write(`${SECRET_B}\n`);
      await eventually(gw, KEY_ALPHA, 201, 'signed with the rotated secret');
      await gw.waitForLog(isReloaded('ZEGO_SERVER_SECRET_FILE'), { since: mark });
      expect(fakeB.calls.at(-1)!.code).toBe(0);
    },
    TIMEOUT,
  );

  it(
    'an emptied Secret keeps the last good secret in use and logs one warning naming the variable',
    async () => {
      const mark = gw.logMark();
      secret.write('\n');
      const warning = await gw.waitForLog(isWarnAbout('ZEGO_SERVER_SECRET_FILE'), {
        since: mark,
        timeoutMs: ROTATION_DEADLINE_MS,
      });
      expect(warning.message).toBe(
        'ZEGO_SERVER_SECRET_FILE not reloaded: names an empty file; keeping the last good value',
      );
      expect((await post(gw, KEY_ALPHA)).status).toBe(201);
      expect(gw.isRunning()).toBe(true);
    },
    TIMEOUT,
  );
});

describe('nothing leaks', () => {
  it('no secret, key, key digest or file content appears in any log or response', () => {
    const haystacks = { responses: http.transcript(), ...gatewayOutputs(s.gateways) };
    expect(s.gateways).toHaveLength(2);
    expect(
      findLeaks(haystacks, {
        SECRET_A,
        SECRET_B,
        KEY_ALPHA,
        KEY_BETA,
        GARBAGE,
        'digest of KEY_ALPHA': sha256Hex(KEY_ALPHA),
        'digest of KEY_BETA': sha256Hex(KEY_BETA),
        'the word SENTINEL': 'SENTINEL',
      }),
    ).toEqual([]);
  });
});
