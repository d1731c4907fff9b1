/**
 * The two secret scans' support: `findLeaks` for a spec's own check of what its gateways wrote and
 * answered, and `recordEmission`, which keeps everything the gateways (and fake vendors) emitted
 * for the whole-suite scan in the jest global teardown (secret-scan.global-teardown.js).
 *
 * With `ZIM_GW_EMISSIONS_DIR` set (jest's global setup sets it), every child's stdout and stderr
 * (gateway-process.ts) and every response an `HttpRecorder` or fleet's createRoom() received are
 * appended, as they arrive, to files in that directory.
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import type { GatewayProcess } from './gateway-process.js';

/** The directory the jest global setup creates; unset outside jest (nothing is written then). */
export const EMISSIONS_DIR_VARIABLE = 'ZIM_GW_EMISSIONS_DIR';

/** `url` up to its query: what a request recorded for the secret scan is labelled with. */
export function withoutQuery(url: string): string {
  const at = url.search(/[?#]/);
  return at === -1 ? url : url.slice(0, at);
}

/**
 * Appends `text` to `<ZIM_GW_EMISSIONS_DIR>/<spec file>.<test process pid>.<kind>.log` when the
 * variable is set; does nothing otherwise. Synchronous on purpose: a worker that ends abruptly
 * loses nothing already recorded. A failing write is ignored here (it must not crash a stream
 * handler); the secret-scan spec checks that the files appear.
 */
export function recordEmission(kind: string, text: string): void {
  const dir = process.env[EMISSIONS_DIR_VARIABLE];
  if (dir === undefined || dir === '' || text === '') return;
  try {
    appendFileSync(path.join(dir, `${emittingSuite()}.${process.pid}.${kind}.log`), text);
  } catch {
    // directory gone (run outside the global setup): nothing to scan anyway
  }
}

/** The running spec's file name (jest's expect state), or `no-suite` outside jest. */
function emittingSuite(): string {
  const state = (globalThis as { expect?: { getState?: () => { testPath?: string } } }).expect?.getState?.();
  const testPath = state?.testPath;
  return testPath ? path.basename(testPath).replace(/[^\w.-]/g, '_') : 'no-suite';
}

/** Every gateway's stdout and stderr, named `gateway <i> stdout` / `stderr`: haystacks for findLeaks. */
export function gatewayOutputs(gateways: readonly GatewayProcess[]): Record<string, string> {
  const outputs: Record<string, string> = {};
  gateways.forEach((g, i) => {
    outputs[`gateway ${i} stdout`] = g.stdout();
    outputs[`gateway ${i} stderr`] = g.stderr();
  });
  return outputs;
}

/**
 * Which needles occur in which haystacks (case-sensitive). Returns human-readable findings that
 * name the needle and the haystack but never print the needle's value.
 */
export function findLeaks(
  haystacks: Record<string, string>,
  needles: Record<string, string>,
): string[] {
  const findings: string[] = [];
  for (const [needleName, needle] of Object.entries(needles)) {
    if (needle === '') continue;
    for (const [haystackName, haystack] of Object.entries(haystacks)) {
      if (haystack.includes(needle)) findings.push(`${needleName} appears in ${haystackName}`);
    }
  }
  return findings;
}
