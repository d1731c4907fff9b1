/**
 * Acceptance criteria checked together: a fleet run is expensive, and when it falls short the
 * useful answer is every criterion it missed with the figure measured, not just the first one.
 *
 *   expect(unmet([
 *     criterion('web: at least 99% of its requests created', web.createdShare >= 0.99, percent(web.createdShare)),
 *     criterion('no window over 20 calls', figures.maxInAnyWindow <= 20, figures.maxInAnyWindow),
 *   ])).toEqual([]);
 */

export interface Criterion {
  readonly what: string;
  readonly met: boolean;
  readonly measured: string;
}

export function criterion(what: string, met: boolean, measured: string | number): Criterion {
  return { what, met, measured: String(measured) };
}

/** The criteria not met, each as "what (measured: ...)"; empty when all are. */
export function unmet(criteria: readonly Criterion[]): string[] {
  return criteria.filter((c) => !c.met).map((c) => `${c.what} (measured: ${c.measured})`);
}

export const percent = (share: number): string => `${(share * 100).toFixed(1)}%`;
export const milliseconds = (ms: number): string => `${ms.toFixed(0)} ms`;
