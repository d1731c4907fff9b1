/**
 * API keys as the gateway's API_KEYS expects them: `client-id:sha256-hex-of-key` entries, so a
 * spec hands the gateway the digests and keeps the keys themselves for its requests.
 */
import { createHash } from 'node:crypto';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** One API_KEYS entry: `client-id:sha256-hex-of-key`. */
export function apiKeyEntry(clientId: string, key: string): string {
  return `${clientId}:${sha256Hex(key)}`;
}

/** A whole API_KEYS value from {clientId: key}, comma separated. */
export function apiKeysValue(keys: Record<string, string>, separator = ','): string {
  return Object.entries(keys)
    .map(([clientId, key]) => apiKeyEntry(clientId, key))
    .join(separator);
}
