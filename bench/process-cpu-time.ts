/**
 * CPU time a process has used so far, user and system, all its threads (the garbage collector's
 * and libuv's included): fields utime and stime of /proc/<pid>/stat (Linux), in clock ticks.
 * Read before and after a load, its difference is what the load cost the process, whatever else
 * ran on the machine meanwhile.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second (USER_HZ): 100 on nearly every Linux, asked of the system all the same. */
const TICKS_PER_SECOND = ((): number => {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
})();

/** Milliseconds of CPU the process used since it started; its resolution is one tick (10 ms). */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in brackets and may hold spaces: count the fields after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`cannot read the CPU time of process ${pid}`);
  return ((utime + stime) * 1000) / TICKS_PER_SECOND;
}
