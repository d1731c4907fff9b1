import type { ConfigProblem } from './config-error.js';

/**
 * The syntax every per-client list in the environment shares (API_KEYS, CLIENT_RATE_LIMITS):
 * `client-id:value` entries separated by commas or newlines, with blank lines and `#` comment
 * lines skipped so that a mounted file can carry comments. Each owner parses its own values.
 */

/** A client id: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The list's entries, trimmed and without blanks; comment lines go first, whole. */
export function listEntries(text: string): string[] {
  // A comma inside a comment must not split off an entry.
  return text
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(','))
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** `client-id:value` split at the first colon, or undefined when the id is not a valid client id. */
export function clientEntry(item: string): { clientId: string; value: string } | undefined {
  const separator = item.indexOf(':');
  if (separator < 0) return undefined;
  const clientId = item.slice(0, separator).trim();
  if (!CLIENT_ID_PATTERN.test(clientId)) return undefined;
  return { clientId, value: item.slice(separator + 1).trim() };
}

/** How one list reads its values: what the value is called and its rule, for the messages. */
export interface ClientValueRule<T> {
  /** `requests-per-second`, `weight`, `priority`. */
  valueName: string;
  /** `a whole number from 1 to 100000`. */
  rule: string;
  /** The value, or undefined when the text breaks the rule. */
  parse: (text: string) => T | undefined;
}

/**
 * A `client-id:value` list as a record by client id, without prototype (a client id such as
 * `constructor` cannot reach an inherited member). Client ids need not be in API_KEYS: keys may
 * rotate in from a file later. Problems point at the entry by position, never by content.
 */
export function parseClientValues<T>(
  text: string,
  variable: string,
  { valueName, rule, parse }: ClientValueRule<T>,
): { values: Record<string, T>; problems: ConfigProblem[] } {
  const values: Record<string, T> = Object.create(null) as Record<string, T>;
  const problems: ConfigProblem[] = [];
  const firstEntryOf = new Map<string, number>();
  listEntries(text).forEach((item, index) => {
    const position = index + 1;
    const entry = clientEntry(item);
    const value = entry && parse(entry.value);
    if (!entry || value === undefined) {
      problems.push({
        variable,
        reason: `entry ${position} must be client-id:${valueName} (client id 1-64 of A-Z a-z 0-9 . _ -, then ${rule})`,
      });
      return;
    }
    const first = firstEntryOf.get(entry.clientId);
    if (first !== undefined) {
      problems.push({ variable, reason: `entry ${position} repeats the client id of entry ${first}` });
      return;
    }
    firstEntryOf.set(entry.clientId, position);
    values[entry.clientId] = value;
  });
  return { values, problems };
}
