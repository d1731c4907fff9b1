import { fieldPath } from './request-validation.error.js';

/**
 * Where the first invalid UTF-8 sequence of `bytes` starts, or -1 when they are valid UTF-8. The
 * same rules as buffer.isUtf8 (no overlong forms, no surrogates, nothing above U+10FFFF); used
 * only once isUtf8 has said no, to find the place.
 */
export function firstInvalidUtf8Offset(bytes: Uint8Array): number {
  let at = 0;
  while (at < bytes.length) {
    const lead = bytes[at]!;
    if (lead < 0x80) {
      at++;
      continue;
    }
    // The sequence's length, and the range its second byte must be in (Unicode's table 3-7).
    let length: number;
    let low = 0x80;
    let high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) length = 2;
    else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead === 0xe0) low = 0xa0;
      if (lead === 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead === 0xf0) low = 0x90;
      if (lead === 0xf4) high = 0x8f;
    } else return at;
    for (let next = 1; next < length; next++) {
      const byte = bytes[at + next];
      if (byte === undefined || byte < (next === 1 ? low : 0x80) || byte > (next === 1 ? high : 0xbf)) return at;
    }
    at += length;
  }
  return -1;
}

/**
 * The field of a parsed body whose text held invalid UTF-8 in `raw` (the string value's path, or
 * the path of the key that held it), or `body` when no field can be named.
 *
 * The decoder turned every invalid sequence into U+FFFD, as it turns a valid U+FFFD, so the
 * parsed body alone cannot tell them apart. Instead the body is parsed once more with the first
 * invalid byte replaced by `?`: exactly one string or key differs between the two, and that is
 * the field. Only a refused body pays for this.
 */
export function invalidUtf8Field(raw: Uint8Array, body: unknown): string {
  const offset = firstInvalidUtf8Offset(raw);
  if (offset === -1) return 'body';
  const marked = Buffer.from(raw);
  marked[offset] = 0x3f;
  let markedBody: unknown;
  try {
    markedBody = JSON.parse(marked.toString('utf8'));
  } catch {
    return 'body';
  }
  return firstDifference(body, markedBody) ?? 'body';
}

/** The path of the first string or key that differs between two parses of nearly the same text. */
function firstDifference(left: unknown, right: unknown): string | undefined {
  const pending: Array<{ left: unknown; right: unknown; path: string }> = [{ left, right, path: '' }];
  while (pending.length > 0) {
    const current = pending.pop()!;
    if (typeof current.left === 'string' || typeof current.right === 'string') {
      if (current.left !== current.right) return current.path === '' ? undefined : current.path;
      continue;
    }
    if (!isObject(current.left) || !isObject(current.right)) continue;
    const leftKeys = Object.keys(current.left);
    const rightKeys = Object.keys(current.right);
    for (let index = 0; index < leftKeys.length; index++) {
      const key = leftKeys[index]!;
      if (key !== rightKeys[index]) return fieldPath(current.path, key);
      pending.push({
        left: (current.left as Record<string, unknown>)[key],
        right: (current.right as Record<string, unknown>)[key],
        path: fieldPath(current.path, key),
      });
    }
  }
  return undefined;
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}
