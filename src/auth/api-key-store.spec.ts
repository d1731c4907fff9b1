import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { parseApiKeyEntries } from './api-key-entries.js';
import { loadConfig } from '../app-config.js';
import { ApiKeyStore } from './api-key-store.js';

const KEY_A = 'SENTINEL-key-alpha-4c1d8e';
const KEY_B = 'SENTINEL-key-bravo-9f02aa';
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

function store(apiKeys = `orders:${sha256(KEY_A)},billing:${sha256(KEY_B)}`): ApiKeyStore {
  return new ApiKeyStore(
    loadConfig({ ZEGO_APP_ID: '1', ZEGO_SERVER_SECRET: 'secret', API_KEYS: apiKeys }),
  );
}

describe('ApiKeyStore', () => {
  it('maps each configured key to its client id', () => {
    const s = store();
    expect(s.authenticate(KEY_A)).toEqual({ clientId: 'orders' });
    expect(s.authenticate(KEY_B)).toEqual({ clientId: 'billing' });
  });

  it('accepts a key whose digest was configured in upper case', () => {
    expect(store(`orders:${sha256(KEY_A).toUpperCase()}`).authenticate(KEY_A)).toEqual({
      clientId: 'orders',
    });
  });

  it.each([
    ['an unknown key', 'SENTINEL-key-charlie'],
    ['an empty key', ''],
    ['a configured key in another case', KEY_A.toLowerCase()],
    ['a configured key with a character more', `${KEY_A}x`],
    ['a configured key with a character less', KEY_A.slice(0, -1)],
    ['the stored digest itself', sha256(KEY_A)],
  ])('refuses %s', (_label, key) => {
    expect(store().authenticate(key)).toBeUndefined();
  });

  it('authenticates against nothing when no key is configured', () => {
    const s = store();
    s.replace([]);
    expect(s.authenticate(KEY_A)).toBeUndefined();
  });

  it('swaps the whole key set on replace()', () => {
    const s = store();
    const { entries, problems } = parseApiKeyEntries(`reports:${sha256('SENTINEL-new-key')}`, 'API_KEYS');
    expect(problems).toEqual([]);
    s.replace(entries);
    expect(s.authenticate('SENTINEL-new-key')).toEqual({ clientId: 'reports' });
    expect(s.authenticate(KEY_A)).toBeUndefined();
  });

  it('holds only digests: the keys appear nowhere in the store or its configuration', () => {
    const config = loadConfig({
      ZEGO_APP_ID: '1',
      ZEGO_SERVER_SECRET: 'secret',
      API_KEYS: `orders:${sha256(KEY_A)}`,
    });
    const s = new ApiKeyStore(config);
    expect(s.authenticate(KEY_A)).toEqual({ clientId: 'orders' });

    const views = [
      inspect(s, { depth: Infinity, showHidden: true }),
      JSON.stringify(s),
      inspect(config, { depth: Infinity, showHidden: true }),
      JSON.stringify(config),
    ];
    for (const view of views) expect(view).not.toContain('SENTINEL');
    expect(config.auth.apiKeys).toHaveLength(1);
    expect(config.auth.apiKeys[0]!.keySha256.equals(createHash('sha256').update(KEY_A).digest())).toBe(true);
  });

  it('returns a fresh identity object, not the stored entry', () => {
    const s = store();
    const first = s.authenticate(KEY_A)!;
    (first as { clientId: string }).clientId = 'tampered';
    expect(s.authenticate(KEY_A)).toEqual({ clientId: 'orders' });
    expect(Object.keys(first)).toEqual(['clientId']);
  });
});
