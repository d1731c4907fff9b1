import { parseClientValues } from '../config/client-entries.js';
import type { ConfigProblem } from '../config/config-error.js';

export const MAX_CLIENT_REQUESTS_PER_SECOND = 100_000;

const WHOLE_NUMBER = /^\d+$/;

/**
 * Per-client quota overrides, `client-id:requests-per-second` entries (the per-client list
 * syntax of client-entries.ts). An empty text means no overrides.
 */
export function parseClientQuotaOverrides(
  text: string,
  variable: string,
): { overrides: Record<string, number>; problems: ConfigProblem[] } {
  const { values, problems } = parseClientValues(text, variable, {
    valueName: 'requests-per-second',
    rule: `a whole number from 1 to ${MAX_CLIENT_REQUESTS_PER_SECOND}`,
    parse: (limit) => {
      const value = WHOLE_NUMBER.test(limit) ? Number(limit) : Number.NaN;
      return value >= 1 && value <= MAX_CLIENT_REQUESTS_PER_SECOND ? value : undefined;
    },
  });
  return { overrides: values, problems };
}
