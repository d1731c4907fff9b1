/** What replaces anything that must never reach a log. */
export const REDACTED = '[redacted]';

/**
 * Keys whose values are never logged, at any depth and in any letter case (headers, axios error
 * configs, query parameter objects, environment dumps).
 */
const SENSITIVE_KEYS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'apikey',
  'api_key',
  'api-key',
  'api_keys',
  'apikeys',
  'password',
  'passwd',
  'secret',
  'serversecret',
  'server_secret',
  'zego_server_secret',
  'redis_password',
  'redis_sentinel_password',
  'signature',
  'signaturenonce',
  'token',
  'access_token',
]);

/**
 * Patterns for secrets inside free text (messages, stacks, URLs). Each keeps the name and
 * replaces the value, so a reader still sees what was there.
 */
const TEXT_PATTERNS: ReadonlyArray<[RegExp, string]> = [
  // `scheme://user:password@host` (redis://, rediss://, http://…): keep the user, drop the password.
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/?#]*):[^\s@]*@/gi, '$1:***@'],
  // Authorization header text: `Authorization: Bearer x`, `"authorization":"Bearer x"`, `authorization=x`.
  [/(\bauthorization["']?\s*[:=]\s*["']?)[^"'\r\n,;}]+/gi, `$1${REDACTED}`],
  // A bearer or basic credential anywhere.
  [/\b(Bearer|Basic)(\s+)[\x21-\x7e]+/gi, `$1$2${REDACTED}`],
  // `Signature=…`, `SignatureNonce=…`, `api_key=…`, `ZEGO_SERVER_SECRET=…` in URLs and dumps.
  [
    /\b([\w.-]*(?:signature|signaturenonce|secret|password|passwd|api[_-]?keys?|token))=[^\s&"'#,;]*/gi,
    `$1=${REDACTED}`,
  ],
  // The same keys as JSON text: `"Signature":"…"`.
  [
    /("[\w.-]*(?:signature|signaturenonce|secret|password|passwd|api[_-]?keys?|token|authorization)"\s*:\s*")(?:[^"\\]|\\.)*"/gi,
    `$1${REDACTED}"`,
  ],
];

/** Shorter literal secrets are not searched for: replacing them would shred every line. */
const MIN_LITERAL_LENGTH = 6;
const MAX_DEPTH = 8;
const MAX_ARRAY_ITEMS = 100;

/** Secret values remembered after their source moved on (a rotated-out secret stays censored). */
const MAX_REMEMBERED_SECRETS = 16;

/**
 * Removes credentials from what is about to be logged: known secret values wherever they occur,
 * credential-shaped text (URL passwords, bearer tokens, signed query parameters), and values of
 * sensitive keys in structured data. Secret sources are read on every call, so a rotated secret
 * is covered as soon as its source hands it out; values seen before stay covered too.
 */
export class LogSanitiser {
  private readonly sources: Array<() => Iterable<string | undefined>> = [];
  private readonly remembered = new Set<string>();

  constructor(source?: () => Iterable<string | undefined>) {
    if (source) this.sources.push(source);
  }

  /** Adds a source of values that must never appear in a log (e.g. the secret in effect). */
  addSecretSource(source: () => Iterable<string | undefined>): void {
    this.sources.push(source);
  }

  sanitise(text: string): string {
    let result = text;
    for (const secret of this.currentSecrets()) {
      if (result.includes(secret)) result = result.split(secret).join(REDACTED);
    }
    for (const [pattern, replacement] of TEXT_PATTERNS) {
      result = result.replace(pattern, replacement);
    }
    return result;
  }

  /**
   * A copy of plain data with every string sanitised and sensitive keys censored. Errors are kept
   * as they are (the logger's `err` serializer sanitises them); other class instances too.
   */
  sanitiseValue(value: unknown, depth = 0): unknown {
    if (typeof value === 'string') return this.sanitise(value);
    if (typeof value !== 'object' || value === null || value instanceof Error) return value;
    if (depth >= MAX_DEPTH) return '[too deep]';
    if (Array.isArray(value)) {
      return value.slice(0, MAX_ARRAY_ITEMS).map((item) => this.sanitiseValue(item, depth + 1));
    }
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) return value;
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      copy[key] = isSensitiveKey(key) && item !== undefined ? REDACTED : this.sanitiseValue(item, depth + 1);
    }
    return copy;
  }

  private currentSecrets(): Iterable<string> {
    for (const source of this.sources) {
      try {
        for (const value of source()) if (value !== undefined) this.remember(value);
      } catch {
        // A source that cannot answer now (e.g. not yet initialised) keeps what it gave before.
      }
    }
    return this.remembered;
  }

  private remember(value: string): void {
    if (value.length < MIN_LITERAL_LENGTH || this.remembered.has(value)) return;
    this.remembered.add(value);
    if (this.remembered.size > MAX_REMEMBERED_SECRETS) {
      this.remembered.delete(this.remembered.values().next().value as string);
    }
  }
}

export function isSensitiveKey(key: string): boolean {
  return SENSITIVE_KEYS.has(key.toLowerCase());
}
