/** A final answer kept for a key: replayed verbatim (apart from the current request's id). */
export type StoredAnswer =
  | { kind: 'success'; status: number; body: Record<string, unknown> }
  | {
      kind: 'error';
      status: number;
      message: string;
      zegoCode?: number;
      zegoRequestId?: string;
      retryAfterSeconds?: number;
    };

/** What claiming a key gave. */
export type ClaimResult =
  /** The key is this request's: perform the call, then finish the claim. */
  | { kind: 'started'; claim: Claim }
  /** Same, after an earlier attempt under the key ended ambiguous (504). */
  | { kind: 'resumed'; claim: Claim }
  /** Another request holds the key; it will have finished within msLeft at the latest. */
  | { kind: 'in-progress'; msLeft: number }
  /** The key was used with another body. */
  | { kind: 'mismatch' }
  /** The key's final answer. */
  | { kind: 'done'; answer: StoredAnswer };

export type ClaimEnd =
  | { action: 'done'; answer: StoredAnswer; ttlMs: number }
  | { action: 'ambiguous'; ttlMs: number }
  | { action: 'release' };

/** A held key. finish() resolves false when the claim had lapsed and was taken over meanwhile. */
export interface Claim {
  finish(end: ClaimEnd): Promise<boolean>;
}

/** The store IdempotencyService claims keys in (IdempotencyModule's factory chooses it; tests give their own). */
export const IDEMPOTENCY_STORE = Symbol('IDEMPOTENCY_STORE');

export interface IdempotencyStore {
  /** Atomically claims `key` for a request with this body fingerprint, for at most pendingTtlMs. */
  claim(key: string, fingerprint: string, pendingTtlMs: number): Promise<ClaimResult>;
}

/** The JSON kept in Redis; parse() refuses anything else (never replays a guess). */
export const storedAnswerJson = {
  stringify(answer: StoredAnswer): string {
    return JSON.stringify(answer);
  },
  parse(text: unknown): StoredAnswer {
    if (typeof text === 'string') {
      const value = JSON.parse(text) as Partial<StoredAnswer> | null;
      if (value && typeof value === 'object' && typeof value.status === 'number') {
        if (value.kind === 'success' && typeof value.body === 'object' && value.body !== null) {
          return value as StoredAnswer;
        }
        if (value.kind === 'error' && typeof value.message === 'string') return value as StoredAnswer;
      }
    }
    throw new Error('a stored idempotent answer has an unexpected shape');
  },
};
