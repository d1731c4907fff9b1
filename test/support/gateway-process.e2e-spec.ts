/**
 * The harness in test/support/gateway-process.ts, which the end-to-end suites and the
 * multi-replica fleet tests (test/fleet/) rely on: clean environment, start-up failures reported
 * with the child's output, SIGKILL fallback, no process left behind, concurrent gateways on their
 * own ports.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { apiKeyEntry, sha256Hex } from './api-keys.js';
import {
  runGatewayExpectingExit,
  runningGatewayPids,
  startGateway,
  stopAllGateways,
} from './gateway-process.js';

const TIMEOUT = 30_000;
const KEY = 'sk-harness-test-key';
const goodEnv = (): Record<string, string> => ({
  ZEGO_APP_ID: '1234',
  ZEGO_SERVER_SECRET: 'harness-secret',
  ZEGO_API_BASE_URL: 'http://127.0.0.1:9',
  API_KEYS: apiKeyEntry('svc-harness', KEY),
});

let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'gateway-harness-e2e-'));
  // A stand-in "gateway" that reports its environment and ignores SIGTERM.
  writeFileSync(
    path.join(tmp, 'stubborn.mjs'),
    `process.on('SIGTERM', () => {});
console.log(JSON.stringify({ level: 'log', message: 'stub listening on port 1', env: process.env, execArgv: process.execArgv }));
setInterval(() => {}, 60_000);
`,
  );
});

afterAll(async () => {
  await stopAllGateways();
  rmSync(tmp, { recursive: true, force: true });
});

describe('gateway-process harness', () => {
  it('apiKeyEntry is client-id:sha256-hex of the key', () => {
    expect(apiKeyEntry('svc-a', 'abc')).toBe(
      'svc-a:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(sha256Hex('abc')).toHaveLength(64);
  });

  it(
    'gives the child only PATH, HOME, PORT=0, SHUTDOWN_GRACE_MS=0 and the given variables',
    async () => {
      const child = await startGateway({ ONLY_THIS: 'yes' }, { cwd: tmp, script: 'stubborn.mjs' });
      const [line] = child.logLines();
      const env = line!.env as Record<string, string>;
      const expected = ['ONLY_THIS', 'PORT', 'SHUTDOWN_GRACE_MS', ...(process.env.PATH ? ['PATH'] : []), ...(process.env.HOME ? ['HOME'] : [])];
      expect(Object.keys(env).sort()).toEqual(expected.sort());
      expect(env.PORT).toBe('0');
      expect(env.SHUTDOWN_GRACE_MS).toBe('0');
      expect(line!.execArgv).toEqual([]);
      expect(child.port).toBe(1);
      await child.stop(500);
    },
    TIMEOUT,
  );

  it(
    'stop() falls back to SIGKILL when SIGTERM is ignored',
    async () => {
      const child = await startGateway({}, { cwd: tmp, script: 'stubborn.mjs' });
      expect(child.isRunning()).toBe(true);
      expect(await child.stop(300)).toBeNull();
      expect(await child.exited).toEqual({ code: null, signal: 'SIGKILL' });
      expect(runningGatewayPids()).not.toContain(child.pid);
    },
    TIMEOUT,
  );

  it(
    'startGateway rejects with the child output when it exits before listening, and leaves nothing behind',
    async () => {
      await expect(startGateway({})).rejects.toThrow(/exited before listening \(code 78[\s\S]*ZEGO_APP_ID: is required/);
      expect(runningGatewayPids()).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    'runGatewayExpectingExit rejects (and stops the gateway) when it starts listening instead',
    async () => {
      await expect(runGatewayExpectingExit(goodEnv())).rejects.toThrow(/started listening instead of exiting/);
      expect(runningGatewayPids()).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    'runs several real gateways at once, each on its own port, and stopAllGateways ends them all',
    async () => {
      const fleet = await Promise.all([startGateway(goodEnv()), startGateway(goodEnv()), startGateway(goodEnv())]);
      expect(new Set(fleet.map((g) => g.port)).size).toBe(3);
      for (const gateway of fleet) {
        const res = await fetch(`${gateway.url}/nowhere`, { headers: { 'X-Request-Id': `harness-${gateway.port}` } });
        expect(res.status).toBe(404);
        expect(res.headers.get('x-request-id')).toBe(`harness-${gateway.port}`);
        const listening = await gateway.waitForLog((l) => /listening on port/.test(String(l.message)));
        expect(listening).toEqual(expect.objectContaining({ level: 'info', pid: gateway.pid, stream: 'stdout' }));
        expect(gateway.logMark()).toBeGreaterThan(0);
      }
      expect(runningGatewayPids().sort()).toEqual(fleet.map((g) => g.pid).sort());
      await stopAllGateways();
      expect(runningGatewayPids()).toEqual([]);
      for (const gateway of fleet) {
        expect(gateway.isRunning()).toBe(false);
        expect(await gateway.exited).toEqual({ code: 0, signal: null });
      }
    },
    TIMEOUT,
  );
});
