/**
 * A safety net for the child processes the test harness starts (gateways, fake vendors,
 * redis-servers). The harness stops them in afterAll; a jest worker that dies first (a timeout,
 * an OOM, a kill) cannot, and under jest a worker's process 'exit' hook never fires. Left running,
 * they would keep eating CPU on a 2-core machine and skew the timing of the runs that follow.
 *
 * Global setup names a fresh directory in ZIM_GW_CHILDREN_DIR; test/support/child-registry.ts
 * writes one file per child there (its pid and its start time from /proc) and removes it when the
 * child exits. Global teardown SIGKILLs every child whose file is still there and whose start time
 * still matches (so a recycled pid is never hit), and says so on stderr. Linux only (/proc);
 * elsewhere the files are not written and this does nothing.
 *
 * Plain ES module JavaScript: jest runs global setup files outside the ts-jest transform.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const CHILDREN_DIR_VARIABLE = 'ZIM_GW_CHILDREN_DIR';

/** Field 22 of /proc/<pid>/stat (clock ticks after boot), or undefined when the process is gone. */
export function processStartTime(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: count after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function leftoverChildrenSetup() {
  process.env[CHILDREN_DIR_VARIABLE] = mkdtempSync(path.join(tmpdir(), 'zim-gw-children-'));
}

export function leftoverChildrenTeardown() {
  const dir = process.env[CHILDREN_DIR_VARIABLE];
  if (!dir) return;
  const killed = [];
  for (const name of readdirSync(dir)) {
    let record;
    try {
      record = JSON.parse(readFileSync(path.join(dir, name), 'utf8'));
    } catch {
      continue; // removed meanwhile, or half-written by a worker that died
    }
    if (processStartTime(record.pid) !== record.startTime) continue;
    try {
      process.kill(record.pid, 'SIGKILL');
      killed.push(`${record.label} (pid ${record.pid})`);
    } catch {
      // gone in between
    }
  }
  rmSync(dir, { recursive: true, force: true });
  if (killed.length > 0) {
    process.stderr.write(`leftover test children killed after the run: ${killed.join(', ')}\n`);
  }
}
