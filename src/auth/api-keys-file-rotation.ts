import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module.js';
import { MountedFileWatcher, sha256 } from '../config/mounted-file-watcher.js';
import { parseApiKeyEntries, type ApiKeyEntry } from './api-key-entries.js';
import { ApiKeyStore } from './api-key-store.js';
import type { AuthSettings } from './auth.settings.js';

/**
 * Registers API_KEYS_FILE, when the keys came from one, with the watcher: a changed file is checked
 * with the start-up rules and swapped into the key store at once.
 */
@Injectable()
export class ApiKeysFileRotation {
  constructor(
    @Inject(APP_CONFIG) config: { readonly auth: AuthSettings },
    store: ApiKeyStore,
    watcher: MountedFileWatcher,
  ) {
    const file = config.auth.apiKeysFile;
    if (file === undefined) return;
    watcher.watch<readonly ApiKeyEntry[]>({
      variable: 'API_KEYS_FILE',
      file,
      applied: keysFingerprint(config.auth.apiKeys),
      parse: (text) => {
        const { entries, problems } = parseApiKeyEntries(text, 'API_KEYS_FILE');
        if (problems.length > 0) return { problem: problems.map((p) => p.reason).join('; ') };
        return { value: entries, fingerprint: keysFingerprint(entries) };
      },
      apply: (entries) => store.replace(entries),
    });
  }
}

function keysFingerprint(entries: readonly ApiKeyEntry[]): string {
  return sha256(entries.map((e) => `${e.clientId}:${e.keySha256.toString('hex')}`).join('\n'));
}
