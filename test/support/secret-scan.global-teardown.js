/**
 * Jest global teardown of the whole-suite secret scan: after every suite ran, scans everything the
 * gateways (and fake vendors) wrote and every recorded response (the files in
 * ZIM_GW_EMISSIONS_DIR, see secret-scan.global-setup.js) for the secrets and API keys the specs
 * handed to the gateways, and for their SHA-256 hex digests. Any occurrence fails the run (jest
 * exits non-zero when the global teardown throws) with a message naming the file and the kind of
 * sentinel, never its value. The directory is removed when clean, kept for inspection otherwise.
 *
 * The sentinels: every spec gives its secrets and keys values with one of SECRET_PREFIXES. They
 * are collected from the spec sources themselves, so a new spec needs no list to be kept here.
 * Values the specs send on purpose as ordinary data (`SENTINEL-room-name`,
 * `SENTINEL-query-value`) do not have these prefixes and are not scanned for.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EMISSIONS_DIR_VARIABLE } from './secret-scan.global-setup.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Prefix → the kind named in findings. Longest first: the first match names the kind. */
export const SECRET_PREFIXES = [
  ['SENTINEL-redis-password-', 'Redis password'],
  ['SENTINEL-url-password-', 'password in a Redis URL'],
  ['SENTINEL-wrong-', 'wrong secret or password'],
  ['SENTINEL-secret-', 'ZEGO_SERVER_SECRET'],
  ['SENTINEL-not-an-entry-', 'API_KEYS file content'],
  ['sk-SENTINEL-', 'API key'],
];

/** A sentinel-prefixed token wherever it appears (also ones built at run time from a prefix). */
const TOKEN = new RegExp(
  `(?:${SECRET_PREFIXES.map(([prefix]) => prefix.replace(/[-]/g, '\\-')).join('|')})[A-Za-z0-9_.~-]*`,
  'g',
);

function kindOf(value) {
  return SECRET_PREFIXES.find(([prefix]) => value.startsWith(prefix))?.[1] ?? 'sentinel';
}

function walk(dir, accept, out = []) {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') walk(full, accept, out);
    } else if (accept(full)) out.push(full);
  }
  return out;
}

/** Every sentinel literal in the specs and test support files: value → {kind, defined in}. */
export function collectSentinels(root = REPO_ROOT) {
  const sentinels = new Map();
  const sources = walk(path.join(root, 'test'), (file) => /\.(ts|js)$/.test(file));
  for (const file of sources) {
    if (file.endsWith(path.join('support', 'secret-scan.global-teardown.js'))) continue;
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(TOKEN)) {
      const value = match[0];
      // A bare prefix (e.g. in a comment or a template `${...}`) is covered by the token scan.
      if (SECRET_PREFIXES.some(([prefix]) => value === prefix)) continue;
      if (!sentinels.has(value)) sentinels.set(value, { kind: kindOf(value), definedIn: path.relative(root, file) });
    }
  }
  return sentinels;
}

const sha256Hex = (text) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Findings (strings without any sentinel value) for every emitted file under `dir`. */
export function scanEmissions(dir, sentinels) {
  const needles = [];
  for (const [value, { kind, definedIn }] of sentinels) {
    needles.push({ text: value, label: `${kind} (defined in ${definedIn})` });
    needles.push({ text: sha256Hex(value), label: `SHA-256 of the ${kind} (defined in ${definedIn})` });
  }
  const findings = [];
  for (const file of walk(dir, () => true)) {
    const text = readFileSync(file, 'utf8');
    const name = path.relative(dir, file);
    const lineOf = (index) => text.slice(0, index).split('\n').length;
    for (const needle of needles) {
      const at = text.indexOf(needle.text);
      if (at !== -1) findings.push(`${name} line ${lineOf(at)}: ${needle.label}`);
    }
    for (const match of text.matchAll(TOKEN)) {
      if (!sentinels.has(match[0])) {
        findings.push(`${name} line ${lineOf(match.index)}: a value with the ${kindOf(match[0])} sentinel prefix`);
      }
    }
  }
  return findings;
}

export default function secretScanGlobalTeardown() {
  const dir = process.env[EMISSIONS_DIR_VARIABLE];
  if (dir === undefined || dir === '' || !existsSync(dir) || !statSync(dir).isDirectory()) return;
  const sentinels = collectSentinels();
  const findings = scanEmissions(dir, sentinels);
  if (findings.length === 0) {
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  const shown = findings.slice(0, 50);
  throw new Error(
    `Secret scan: ${findings.length} occurrence(s) of a secret, API key or digest in what the gateways ` +
      `emitted (files kept in ${dir}; values not shown):\n  ${shown.join('\n  ')}` +
      (findings.length > shown.length ? `\n  … and ${findings.length - shown.length} more` : ''),
  );
}
