/**
 * Runs Prometheus's promtool (Debian's `prometheus` package) and returns what it said, whether it
 * succeeded or not, so a spec can assert on its exit code and show its output.
 */
import { execFile } from 'node:child_process';
import { findPrometheusProgram } from './prometheus-server.js';

export interface PromtoolRun {
  /** 0 when promtool was satisfied. */
  code: number;
  /** stdout and stderr together. */
  output: string;
}

export function promtool(args: readonly string[], cwd?: string): Promise<PromtoolRun> {
  const binary = findPrometheusProgram('promtool');
  return new Promise((resolve, reject) => {
    execFile(binary, [...args], { cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (error && typeof error.code !== 'number') return reject(new Error(`promtool ${args.join(' ')}: ${error.message}\n${output}`));
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, output });
    });
  });
}
