import { clientEntry, listEntries } from '../config/client-entries.js';
import type { ConfigProblem } from '../config/config-error.js';

export const MAX_CLIENT_REQUESTS_PER_SECOND = 100_000;

const WHOLE_NUMBER = /^\d+$/;

/**
 * Parses per-client quota overrides, `client-id:requests-per-second` entries (the per-client list
 * syntax of client-entries.ts). An empty text means no overrides. Client ids need not be in
 * API_KEYS (keys may rotate in from a file later). The record has no prototype, so a client id
 * such as `constructor` cannot reach an inherited member. Problems point at the entry by
 * position, never by content.
 */
export function parseClientQuotaOverrides(
  text: string,
  variable: string,
): { overrides: Record<string, number>; problems: ConfigProblem[] } {
  const overrides: Record<string, number> = Object.create(null) as Record<string, number>;
  const problems: ConfigProblem[] = [];
  const firstEntryOf = new Map<string, number>();

  listEntries(text).forEach((item, index) => {
    const position = index + 1;
    const entry = clientEntry(item);
    const value = entry && WHOLE_NUMBER.test(entry.value) ? Number(entry.value) : Number.NaN;
    if (!entry || !(value >= 1 && value <= MAX_CLIENT_REQUESTS_PER_SECOND)) {
      problems.push({
        variable,
        reason: `entry ${position} must be client-id:requests-per-second (client id 1-64 of A-Z a-z 0-9 . _ -, then a whole number from 1 to ${MAX_CLIENT_REQUESTS_PER_SECOND})`,
      });
      return;
    }
    const first = firstEntryOf.get(entry.clientId);
    if (first !== undefined) {
      problems.push({ variable, reason: `entry ${position} repeats the client id of entry ${first}` });
      return;
    }
    firstEntryOf.set(entry.clientId, position);
    overrides[entry.clientId] = value;
  });

  return { overrides, problems };
}
