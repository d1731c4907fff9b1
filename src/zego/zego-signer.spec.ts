import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { loadConfig } from '../app-config.js';
import { Secret } from '../config/secret.js';
import { ZegoSecret } from './zego-secret.js';
import { ZegoSigner } from './zego-signer.js';

/** A distinctive secret, so its absence from any output cannot be a coincidence. */
const SECRET = 'SENTINEL-secret-7f3a9c-do-not-print';
const APP_ID = 987654321;

function signer(secret?: ZegoSecret): ZegoSigner {
  const loaded = config();
  return new ZegoSigner(loaded, secret ?? new ZegoSecret(loaded));
}

function config() {
  return loadConfig({
    ZEGO_APP_ID: String(APP_ID),
    ZEGO_SERVER_SECRET: SECRET,
    API_KEYS: `svc:${'a'.repeat(64)}`,
  });
}

/** The vendor's formula, computed here without going through the signer. */
function md5Hex(text: string): string {
  return createHash('md5').update(Buffer.from(text, 'utf8')).digest('hex');
}

describe('ZegoSigner.signature', () => {
  it('reproduces the vendor test vector', () => {
    expect(
      ZegoSigner.signature('12345', '4fd24687296dd9f3', '9193cc662a4c0ec135ec71fb57194b38', '1615186943'),
    ).toBe('43e5cfcca828314675f91b001390566a');
  });

  it('joins the four values in the order AppId, nonce, secret, timestamp', () => {
    const got = ZegoSigner.signature('1', 'aaaaaaaaaaaaaaaa', 'sss', '2');
    expect(got).toBe(md5Hex('1aaaaaaaaaaaaaaaasss2'));
    // Any other order gives a different digest, so the order is really checked.
    expect(got).not.toBe(md5Hex('1sssaaaaaaaaaaaaaaaa2'));
  });

  it('hashes the secret as UTF-8', () => {
    expect(ZegoSigner.signature('1', 'n', 'clé-秘密', '2')).toBe(
      createHash('md5').update(Buffer.from('1nclé-秘密2', 'utf8')).digest('hex'),
    );
  });
});

describe('ZegoSigner.sign', () => {
  const at = new Date('2024-03-05T06:07:08.999Z');

  it('returns the five public parameters, signed with the configured secret', () => {
    const params = signer().sign(at);

    expect(Object.keys(params).sort()).toEqual(
      ['AppId', 'Signature', 'SignatureNonce', 'SignatureVersion', 'Timestamp'].sort(),
    );
    expect(params.AppId).toBe(String(APP_ID));
    expect(params.SignatureVersion).toBe('2.0');
    expect(params.SignatureNonce).toMatch(/^[0-9a-f]{16}$/);
    expect(params.Timestamp).toBe(String(Math.floor(Date.UTC(2024, 2, 5, 6, 7, 8) / 1000)));
    expect(params.Signature).toMatch(/^[0-9a-f]{32}$/);
    expect(params.Signature).toBe(
      md5Hex(`${APP_ID}${params.SignatureNonce}${SECRET}${params.Timestamp}`),
    );
  });

  it('signs with the secret in effect at each call, so a rotated secret applies to the next call', () => {
    const secret = new ZegoSecret(config());
    const s = signer(secret);
    const rotated = 'SENTINEL-rotated-secret-2b8e';
    const before = s.sign(at);
    expect(before.Signature).toBe(md5Hex(`${APP_ID}${before.SignatureNonce}${SECRET}${before.Timestamp}`));
    secret.replace(new Secret(rotated));
    expect(secret.current().reveal()).toBe(rotated);
    const after = s.sign(at);
    expect(after.Signature).toBe(md5Hex(`${APP_ID}${after.SignatureNonce}${rotated}${after.Timestamp}`));
  });

  it('gives the timestamp in whole seconds, rounded down', () => {
    const s = signer();
    expect(s.sign(new Date(1_700_000_000_000)).Timestamp).toBe('1700000000');
    expect(s.sign(new Date(1_700_000_000_999)).Timestamp).toBe('1700000000');
    expect(s.sign(new Date(1_700_000_001_000)).Timestamp).toBe('1700000001');
  });

  it('uses the current time when no date is given', () => {
    const before = Math.floor(Date.now() / 1000);
    const params = signer().sign();
    const after = Math.floor(Date.now() / 1000);
    expect(Number(params.Timestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(params.Timestamp)).toBeLessThanOrEqual(after);
  });

  it('draws a fresh nonce, and so a fresh signature, for every call', () => {
    const s = signer();
    const runs = 2000;
    const nonces = new Set<string>();
    const signatures = new Set<string>();
    for (let i = 0; i < runs; i++) {
      const params = s.sign(at);
      expect(params.SignatureNonce).toMatch(/^[0-9a-f]{16}$/);
      nonces.add(params.SignatureNonce);
      signatures.add(params.Signature);
    }
    expect(nonces.size).toBe(runs);
    expect(signatures.size).toBe(runs);
  });

  it('uses all 16 hex digits of the nonce (8 random bytes, not fewer)', () => {
    const s = signer();
    // With 8 random bytes, every position takes several values over a few hundred draws; a nonce
    // padded from fewer bytes would keep some positions constant.
    const seen = Array.from({ length: 16 }, () => new Set<string>());
    for (let i = 0; i < 300; i++) {
      [...s.sign(at).SignatureNonce].forEach((digit, index) => seen[index]!.add(digit));
    }
    for (const digits of seen) expect(digits.size).toBeGreaterThan(1);
  });
});

describe('secret hygiene', () => {
  it('keeps the secret out of JSON and util.inspect of the signer', () => {
    const s = signer();
    expect(JSON.stringify(s)).not.toContain(SECRET);
    expect(inspect(s, { depth: Infinity, showHidden: true })).not.toContain(SECRET);
    expect(String(s as unknown)).not.toContain(SECRET); // whatever its string form is
  });

  it('keeps the secret out of JSON, util.inspect and string forms of the configuration', () => {
    const c = config();
    expect(JSON.stringify(c)).not.toContain(SECRET);
    expect(inspect(c, { depth: Infinity, showHidden: true })).not.toContain(SECRET);
    expect(String(c.zego.serverSecret)).not.toContain(SECRET);
    expect(JSON.stringify(c.zego)).toContain('[redacted]');
    // ...while the signer can still use it.
    expect(c.zego.serverSecret.reveal()).toBe(SECRET);
  });
});
