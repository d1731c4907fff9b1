import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { parseApiKeyEntries } from './api-key-entries.js';

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const H1 = sha256('key-one');
const H2 = sha256('key-two');
const H3 = sha256('key-three');

function parse(text: string) {
  return parseApiKeyEntries(text, 'API_KEYS');
}

function ids(text: string): string[] {
  const { entries, problems } = parse(text);
  expect(problems).toEqual([]);
  return entries.map((e) => e.clientId);
}

describe('parseApiKeyEntries', () => {
  it('reads client-id:sha256 entries into ids and 32-byte digests', () => {
    const { entries, problems } = parse(`orders:${H1}`);
    expect(problems).toEqual([]);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.clientId).toBe('orders');
    expect(Buffer.isBuffer(entries[0]!.keySha256)).toBe(true);
    expect(entries[0]!.keySha256.equals(createHash('sha256').update('key-one').digest())).toBe(true);
  });

  it('takes entries separated by commas, newlines or both, around spaces', () => {
    expect(ids(`a:${H1},b:${H2},c:${H3}`)).toEqual(['a', 'b', 'c']);
    expect(ids(`a:${H1}\nb:${H2}\r\nc:${H3}\n`)).toEqual(['a', 'b', 'c']);
    expect(ids(`  a : ${H1} ,\n\n  b:${H2},,\n c:${H3}  `)).toEqual(['a', 'b', 'c']);
  });

  it('skips blank lines and comment lines', () => {
    const text = ['# clients of the gateway', '', `a:${H1}`, '   ', '  # b is retired', `c:${H3}`, ''].join('\n');
    expect(ids(text)).toEqual(['a', 'c']);
  });

  it('skips a comment line that contains commas or colons', () => {
    const text = ['# orders, billing: rotated 2024-05-01, see ticket 42', `a:${H1}`].join('\n');
    expect(ids(text)).toEqual(['a']);
  });

  it('accepts an upper-case digest and stores it normalised', () => {
    const { entries } = parse(`a:${H1.toUpperCase()}`);
    expect(entries[0]!.keySha256.toString('hex')).toBe(H1);
  });

  it('accepts client ids of 1 and 64 characters from A-Z a-z 0-9 . _ -', () => {
    const long = `A${'b'.repeat(62)}9`;
    expect(ids(`x:${H1},${long}:${H2},svc.orders_v2-eu:${H3}`)).toEqual(['x', long, 'svc.orders_v2-eu']);
  });

  it.each([
    ['no colon', `orders${H1}`],
    ['an empty client id', `:${H1}`],
    ['a client id of 65 characters', `${'a'.repeat(65)}:${H1}`],
    ['a client id starting with a dot', `.orders:${H1}`],
    ['a client id with a space', `my orders:${H1}`],
    ['a short digest', `orders:${H1.slice(0, 63)}`],
    ['a long digest', `orders:${H1}0`],
    ['a digest that is not hex', `orders:${H1.slice(0, 63)}g`],
    ['a raw key instead of a digest', 'orders:my-plain-api-key'],
    ['two colons', `orders:${H1}:extra`],
  ])('reports an entry with %s', (_label, entry) => {
    const { entries, problems } = parse(`ok:${H2}\n${entry}`);
    expect(entries.map((e) => e.clientId)).toEqual(['ok']);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.variable).toBe('API_KEYS');
    expect(problems[0]!.reason).toMatch(/^entry 2 /);
  });

  it('reports a repeated client id', () => {
    const { entries, problems } = parse(`orders:${H1},orders:${H2}`);
    expect(entries.map((e) => e.clientId)).toEqual(['orders']);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.reason).toMatch(/entry 2 .*client id/);
  });

  it('reports a repeated digest, whatever its case', () => {
    const { entries, problems } = parse(`orders:${H1}\nbilling:${H1.toUpperCase()}`);
    expect(entries.map((e) => e.clientId)).toEqual(['orders']);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.reason).toMatch(/entry 2 .*key/);
  });

  it('numbers entries by position among the real entries, skipping comments and blanks', () => {
    const { problems } = parse(['# header', '', `a:${H1}`, '# note', 'broken', `c:${H3}`].join('\n'));
    expect(problems.map((p) => p.reason)).toEqual([expect.stringMatching(/^entry 2 /)]);
  });

  it('reports every bad entry, not only the first', () => {
    const { problems } = parse(`bad-one,a:${H1},bad-two,a:${H2},b:${H1}`);
    expect(problems.map((p) => p.reason.slice(0, 8))).toEqual(['entry 1 ', 'entry 3 ', 'entry 4 ', 'entry 5 ']);
  });

  it.each(['', '   ', '\n\n', '# only a comment', ' , ,\n'])('reports a text without entries (%j)', (text) => {
    const { entries, problems } = parse(text);
    expect(entries).toEqual([]);
    expect(problems).toEqual([{ variable: 'API_KEYS', reason: expect.stringMatching(/no client entries/) }]);
  });

  it('names the variable it was given', () => {
    const { problems } = parseApiKeyEntries('broken', 'API_KEYS_FILE');
    expect(problems[0]!.variable).toBe('API_KEYS_FILE');
  });

  it('never quotes a digest or the content of a bad entry', () => {
    const secretish = 'SENTINELrawkeyvalue';
    const text = `${secretish},a:${H1},b:${H1},c:${H2.slice(0, 10)}SENTINEL`;
    const { problems } = parse(text);
    expect(problems).toHaveLength(3);
    const rendered = JSON.stringify(problems);
    expect(rendered).not.toContain('SENTINEL');
    expect(rendered).not.toContain(H1);
    expect(rendered).not.toContain(H2.slice(0, 10));
  });
});
