import { createHash } from 'node:crypto';
import { RequestValidationError } from '../http/request-validation.error.js';

export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';
export const IDEMPOTENT_REPLAYED_HEADER = 'Idempotent-Replayed';

/**
 * 1-255 printable ASCII characters, space excluded: Node trims a header value's outer spaces and
 * joins repeated headers with ", ", so a key with spaces could not round-trip unchanged.
 */
const ACCEPTABLE_KEY = /^[\x21-\x7e]{1,255}$/;
export const KEY_RULE = 'must be 1-255 printable ASCII characters (0x21-0x7E, no spaces), sent once';

/**
 * The request's Idempotency-Key, undefined when it sent none. Throws the usual 400 naming the
 * header for a malformed one (empty, too long, spaces, non-ASCII, or the header sent twice).
 */
export function readIdempotencyKey(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && ACCEPTABLE_KEY.test(value)) return value;
  throw new RequestValidationError([{ field: IDEMPOTENCY_KEY_HEADER, reason: KEY_RULE }]);
}

/** JSON with object keys sorted at every depth and undefined members left out. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonical(value));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => (item === undefined ? null : canonical(item)));
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(record)
        .filter((key) => record[key] !== undefined)
        .sort()
        .map((key) => [key, canonical(record[key])]),
    );
  }
  return value;
}

/** What makes two requests "the same request": the SHA-256 of the validated body's canonical JSON. */
export function bodyFingerprint(body: unknown): string {
  return sha256Hex(canonicalJson(body));
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
