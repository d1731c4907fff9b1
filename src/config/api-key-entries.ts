import type { ConfigProblem } from './config-error.js';

/** A client allowed to call the gateway: its id and the SHA-256 of its API key. */
export interface ApiKeyEntry {
  clientId: string;
  keySha256: Buffer;
}

/** A client id: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/**
 * Parses `client-id:sha256-hex-of-key` entries separated by commas or newlines. Blank lines and
 * lines starting with `#` are skipped so a mounted file can carry comments. Problems point at the
 * entry by position, never by content.
 */
export function parseApiKeyEntries(
  text: string,
  variable: string,
): { entries: ApiKeyEntry[]; problems: ConfigProblem[] } {
  const entries: ApiKeyEntry[] = [];
  const problems: ConfigProblem[] = [];
  const seenIds = new Set<string>();
  const seenHashes = new Set<string>();
  // Comment lines go first, whole: a comma inside a comment must not split off an entry.
  const items = text
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(','))
    .map((item) => item.trim())
    .filter((item) => item !== '' && !item.startsWith('#'));

  items.forEach((item, index) => {
    const where = `entry ${index + 1}`;
    const separator = item.indexOf(':');
    const clientId = separator < 0 ? '' : item.slice(0, separator).trim();
    const hash = separator < 0 ? '' : item.slice(separator + 1).trim();
    if (!CLIENT_ID_PATTERN.test(clientId) || !SHA256_HEX.test(hash)) {
      problems.push({
        variable,
        reason: `${where} must be client-id:sha256-hex (client id 1-64 of A-Z a-z 0-9 . _ -, then 64 hex digits)`,
      });
      return;
    }
    const normalisedHash = hash.toLowerCase();
    if (seenIds.has(clientId)) {
      problems.push({ variable, reason: `${where} repeats client id "${clientId}"` });
      return;
    }
    if (seenHashes.has(normalisedHash)) {
      problems.push({ variable, reason: `${where} reuses the key of an earlier entry` });
      return;
    }
    seenIds.add(clientId);
    seenHashes.add(normalisedHash);
    entries.push({ clientId, keySha256: Buffer.from(normalisedHash, 'hex') });
  });

  if (items.length === 0) problems.push({ variable, reason: 'holds no client entries' });
  return { entries, problems };
}
