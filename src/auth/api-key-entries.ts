import { clientEntry, listEntries } from '../config/client-entries.js';
import type { ConfigProblem } from '../config/config-error.js';

/** A client allowed to call the gateway: its id and the SHA-256 of its API key. */
export interface ApiKeyEntry {
  clientId: string;
  keySha256: Buffer;
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/**
 * Parses `client-id:sha256-hex-of-key` entries (the per-client list syntax of client-entries.ts).
 * The same rules apply at start-up and to a rotated API_KEYS_FILE. Problems point at the entry by
 * position, never by content.
 */
export function parseApiKeyEntries(
  text: string,
  variable: string,
): { entries: ApiKeyEntry[]; problems: ConfigProblem[] } {
  const entries: ApiKeyEntry[] = [];
  const problems: ConfigProblem[] = [];
  const seenIds = new Set<string>();
  const seenHashes = new Set<string>();
  // An entry that starts with `#` after a comma is a comment too.
  const items = listEntries(text).filter((item) => !item.startsWith('#'));

  items.forEach((item, index) => {
    const where = `entry ${index + 1}`;
    const entry = clientEntry(item);
    if (!entry || !SHA256_HEX.test(entry.value)) {
      problems.push({
        variable,
        reason: `${where} must be client-id:sha256-hex (client id 1-64 of A-Z a-z 0-9 . _ -, then 64 hex digits)`,
      });
      return;
    }
    const { clientId } = entry;
    const normalisedHash = entry.value.toLowerCase();
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
