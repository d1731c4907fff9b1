/**
 * The safety net for children a dead jest worker leaves running: ChildRegistry leaves a record per
 * child in ZIM_GW_CHILDREN_DIR, and the global teardown (run here in its own node process, as jest
 * runs it) SIGKILLs those still running, and only those.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { until } from './async-probes.js';
import { ChildRegistry, exitPromise } from './child-registry.js';

const TEARDOWN = path.resolve('test/support/leftover-children.global.js');
const onLinux = existsSync('/proc/self/stat');

const spawned: ChildProcess[] = [];
let dir = '';
const savedDir = process.env.ZIM_GW_CHILDREN_DIR;

afterEach(async () => {
  for (const child of spawned.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exitPromise(child);
  }
  process.env.ZIM_GW_CHILDREN_DIR = savedDir;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A child that runs until killed, tracked as the harness tracks gateways. */
function sleeper(registry: ChildRegistry): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  spawned.push(child);
  registry.track(child);
  return child;
}

/** Runs the global teardown as jest does: another process, the same environment. */
async function runTeardown(): Promise<string> {
  const script = `import(${JSON.stringify(TEARDOWN)}).then((m) => m.leftoverChildrenTeardown())`;
  const { stderr } = await promisify(execFile)(process.execPath, ['-e', script], { env: process.env });
  return stderr;
}

describe('leftover children after a run', () => {
  it('kills the children still running when the run ends, and removes the directory', async () => {
    if (!onLinux) return expect(onLinux).toBe(false); // the net is Linux only (/proc)
    dir = mkdtempSync(path.join(tmpdir(), 'zim-gw-children-test-'));
    process.env.ZIM_GW_CHILDREN_DIR = dir;
    const registry = new ChildRegistry();
    const left = sleeper(registry);
    const stopped = sleeper(registry);
    expect(readdirSync(dir).sort()).toEqual([String(left.pid), String(stopped.pid)].sort());

    // One child ends normally: its record goes with it.
    stopped.kill('SIGTERM');
    await exitPromise(stopped);
    await until(() => !readdirSync(dir).includes(String(stopped.pid)), 'the record of the stopped child is gone');

    const stderr = await runTeardown();
    expect(await exitPromise(left)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(stderr).toContain(`pid ${left.pid}`);
    expect(stderr).not.toContain(`pid ${stopped.pid}`);
    expect(existsSync(dir)).toBe(false);
  });

  it('never kills a process whose pid was recycled (the start time differs)', async () => {
    if (!onLinux) return expect(onLinux).toBe(false);
    dir = mkdtempSync(path.join(tmpdir(), 'zim-gw-children-test-'));
    process.env.ZIM_GW_CHILDREN_DIR = dir;
    const other = sleeper(new ChildRegistry());
    const file = path.join(dir, String(other.pid));
    const record = JSON.parse(readFileSync(file, 'utf8')) as { startTime: string };
    writeFileSync(file, JSON.stringify({ ...record, startTime: String(Number(record.startTime) - 1) }));

    const stderr = await runTeardown();
    expect(stderr).toBe('');
    // Still there to take our own signal: had the teardown killed it, it would have died of SIGKILL.
    other.kill('SIGTERM');
    expect(await exitPromise(other)).toEqual({ code: null, signal: 'SIGTERM' });
  });
});
