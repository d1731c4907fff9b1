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
