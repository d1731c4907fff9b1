import { hash, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module.js';
import type { ApiKeyEntry } from './api-key-entries.js';
import type { AuthSettings } from './auth.settings.js';

/** The identity a valid API key stands for. */
export interface AuthenticatedClient {
  clientId: string;
}

/**
 * Holds only SHA-256 digests of the API keys, so a memory dump or a leaked configuration does not
 * reveal a usable key. Every lookup compares against every entry in constant time.
 */
@Injectable()
export class ApiKeyStore {
  private entries: readonly ApiKeyEntry[];

  constructor(@Inject(APP_CONFIG) config: { readonly auth: AuthSettings }) {
    this.entries = config.auth.apiKeys;
  }

  authenticate(presentedKey: string): AuthenticatedClient | undefined {
    const digest = hash('sha256', presentedKey, 'buffer');
    let match: ApiKeyEntry | undefined;
    for (const entry of this.entries) {
      // No early exit: the time taken does not depend on which entry, if any, matched.
      if (timingSafeEqual(digest, entry.keySha256) && match === undefined) match = entry;
    }
    return match ? { clientId: match.clientId } : undefined;
  }

  /** The clients that have a key now (each once). */
  clientIds(): string[] {
    return [...new Set(this.entries.map((entry) => entry.clientId))];
  }

  /** Swaps the key set at once (for rotation of a mounted API_KEYS_FILE). */
  replace(entries: readonly ApiKeyEntry[]): void {
    this.entries = entries;
  }
}
