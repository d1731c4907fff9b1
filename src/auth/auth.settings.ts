import type { EnvReader } from '../config/env-reader.js';
import { parseApiKeyEntries, type ApiKeyEntry } from './api-key-entries.js';

export interface AuthSettings {
  readonly apiKeys: readonly ApiKeyEntry[];
  /** Where the keys were read from, when they came from a file (for rotation). */
  readonly apiKeysFile?: string;
}

/** API_KEYS or API_KEYS_FILE: exactly one; problems name the variable the bad entry came from. */
export function readAuthSettings(read: EnvReader): AuthSettings {
  const source = read.inlineOrFile('API_KEYS', 'API_KEYS_FILE');
  if (!source) return { apiKeys: [] };
  const parsed = parseApiKeyEntries(source.value, source.file ? 'API_KEYS_FILE' : 'API_KEYS');
  parsed.problems.forEach((p) => read.problem(p.variable, p.reason));
  return { apiKeys: parsed.entries, apiKeysFile: source.file };
}
