import { CLIENT_ID_PATTERN } from './api-key-entries.js';
import type { ConfigProblem } from './config-error.js';

export const MAX_CLIENT_REQUESTS_PER_SECOND = 100_000;

const WHOLE_NUMBER = /^\d+$/;

/**
 * Parses per-client quota overrides, `client-id:requests-per-second` entries separated by commas
 * or newlines. Blank lines and lines starting with `#` are skipped. An empty text means no
 * overrides. Client ids need not be in API_KEYS (keys may rotate in from a file later). The
 * record has no prototype, so a client id such as `constructor` cannot reach an inherited member.
 * Problems point at the entry by position, never by content.
 */
export function parseClientQuotaOverrides(
  text: string,
  variable: string,
): { overrides: Record<string, number>; problems: ConfigProblem[] } {
  const overrides: Record<string, number> = Object.create(null) as Record<string, number>;
  const problems: ConfigProblem[] = [];
  const firstEntryOf = new Map<string, number>();
  const items = text
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(','))
    .map((item) => item.trim())
    .filter((item) => item !== '');

  items.forEach((item, index) => {
    const position = index + 1;
    const where = `entry ${position}`;
    const separator = item.indexOf(':');
    const clientId = separator < 0 ? '' : item.slice(0, separator).trim();
    const limit = separator < 0 ? '' : item.slice(separator + 1).trim();
    const value = WHOLE_NUMBER.test(limit) ? Number(limit) : Number.NaN;
    if (!CLIENT_ID_PATTERN.test(clientId) || !(value >= 1 && value <= MAX_CLIENT_REQUESTS_PER_SECOND)) {
      problems.push({
        variable,
        reason: `${where} must be client-id:requests-per-second (client id 1-64 of A-Z a-z 0-9 . _ -, then a whole number from 1 to ${MAX_CLIENT_REQUESTS_PER_SECOND})`,
      });
      return;
    }
    const first = firstEntryOf.get(clientId);
    if (first !== undefined) {
      problems.push({ variable, reason: `${where} repeats the client id of entry ${first}` });
      return;
    }
    firstEntryOf.set(clientId, position);
    overrides[clientId] = value;
  });

  return { overrides, problems };
}
