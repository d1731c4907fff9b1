/**
 * The Node check that opens `npm run local` and `npm test`: silent on the major .nvmrc names, one
 * line naming both versions and the way to the right one on any other.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/gateway-process.js';

const SCRIPT = join('test', 'local', 'require-node-version.js');
const dirs: string[] = [];

/** Runs the check from a copy of the repository's layout whose .nvmrc says `major`. */
function checkAgainst(major: string) {
  const root = mkdtempSync(join(tmpdir(), 'require-node-'));
  dirs.push(root);
  mkdirSync(join(root, 'test', 'local'), { recursive: true });
  copyFileSync(join(REPO_ROOT, SCRIPT), join(root, SCRIPT));
  copyFileSync(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
  writeFileSync(join(root, '.nvmrc'), `${major}\n`);
  return spawnSync(process.execPath, [SCRIPT], { cwd: root, encoding: 'utf8' });
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('require-node-version', () => {
  const running = process.versions.node.split('.')[0]!;

  it('passes quietly on the major the repository names', () => {
    expect(readFileSync(join(REPO_ROOT, '.nvmrc'), 'utf8').trim()).toBe(running);
    const result = spawnSync(process.execPath, [SCRIPT], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect({ status: result.status, stdout: result.stdout, stderr: result.stderr }).toEqual({ status: 0, stdout: '', stderr: '' });
  });

  it('stops with one line that names both versions and how to get the right one', () => {
    const wanted = String(Number(running) + 2);
    const result = checkAgainst(wanted);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`needs Node ${wanted} (.nvmrc), this is Node ${process.versions.node}`);
    expect(lines[0]).toContain(`npm install --prefix ~/.cache/node-${wanted} node@${wanted}`);
  });
});
