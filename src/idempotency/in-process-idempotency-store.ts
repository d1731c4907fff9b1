import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Claim, ClaimEnd, ClaimResult, IdempotencyStore, StoredAnswer } from './idempotency-store.js';

interface Entry {
  state: 'pending' | 'ambiguous' | 'done';
  fingerprint: string;
  /** When the whole record goes (ms, monotonic clock). */
  expiresAt: number;
  /** pending: the holder's token, when its claim ends, and what the key returns to afterwards. */
  token?: string;
  until?: number;
  prior?: 'ambiguous';
  answer?: StoredAnswer;
}

const SWEEP_INTERVAL_MS = 10_000;

/**
 * The store of one process: a Map with the same rules as the Redis scripts
 * (lua/idempotency-begin.lua, lua/idempotency-finish.lua). Every method body runs without an
 * await, so each step is atomic on the event loop. Expired records are dropped when touched and
 * in a sweep at most every 10 s.
 */
export class InProcessIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private lastSweep: number;

  constructor(private readonly now: () => number = () => performance.now()) {
    this.lastSweep = now();
  }

  claim(key: string, fingerprint: string, pendingTtlMs: number): Promise<ClaimResult> {
    const now = this.now();
    this.sweep(now);
    let entry = this.live(key, now);
    if (entry?.state === 'pending' && entry.until! <= now) {
      // The holder never finished: the key returns to what it was before its claim.
      if (entry.prior === 'ambiguous') {
        entry = { state: 'ambiguous', fingerprint: entry.fingerprint, expiresAt: entry.expiresAt };
        this.entries.set(key, entry);
      } else {
        this.entries.delete(key);
        entry = undefined;
      }
    }
    if (!entry) {
      const token = randomUUID();
      this.entries.set(key, {
        state: 'pending',
        fingerprint,
        token,
        until: now + pendingTtlMs,
        expiresAt: now + pendingTtlMs,
      });
      return Promise.resolve({ kind: 'started', claim: this.claimFor(key, token) });
    }
    if (entry.fingerprint !== fingerprint) return Promise.resolve({ kind: 'mismatch' });
    if (entry.state === 'done') return Promise.resolve({ kind: 'done', answer: entry.answer! });
    if (entry.state === 'ambiguous') {
      const token = randomUUID();
      this.entries.set(key, {
        state: 'pending',
        fingerprint,
        token,
        until: now + pendingTtlMs,
        prior: 'ambiguous',
        expiresAt: Math.max(entry.expiresAt, now + pendingTtlMs),
      });
      return Promise.resolve({ kind: 'resumed', claim: this.claimFor(key, token) });
    }
    return Promise.resolve({ kind: 'in-progress', msLeft: entry.until! - now });
  }

  private claimFor(key: string, token: string): Claim {
    return { finish: (end) => Promise.resolve(this.finish(key, token, end)) };
  }

  private finish(key: string, token: string, end: ClaimEnd): boolean {
    const now = this.now();
    const entry = this.live(key, now);
    if (entry?.state !== 'pending' || entry.token !== token) return false;
    const base = { fingerprint: entry.fingerprint };
    switch (end.action) {
      case 'release':
        if (entry.prior === 'ambiguous') {
          this.entries.set(key, { ...base, state: 'ambiguous', expiresAt: entry.expiresAt });
        } else {
          this.entries.delete(key);
        }
        return true;
      case 'ambiguous':
        this.entries.set(key, { ...base, state: 'ambiguous', expiresAt: now + end.ttlMs });
        return true;
      case 'done':
        this.entries.set(key, { ...base, state: 'done', answer: end.answer, expiresAt: now + end.ttlMs });
        return true;
    }
  }

  private live(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) this.entries.delete(key);
    }
  }
}
