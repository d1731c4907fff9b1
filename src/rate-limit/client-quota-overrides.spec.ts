import { describe, expect, it } from '@jest/globals';
import { parseClientQuotaOverrides } from './client-quota-overrides.js';

function parse(text: string) {
  return parseClientQuotaOverrides(text, 'CLIENT_RATE_LIMITS');
}

function overrides(text: string): Record<string, number> {
  const parsed = parse(text);
  expect(parsed.problems).toEqual([]);
  return parsed.overrides;
}

/** The reasons given, each checked to name the variable. */
function reasons(text: string): string[] {
  const { problems } = parse(text);
  for (const problem of problems) expect(problem.variable).toBe('CLIENT_RATE_LIMITS');
  return problems.map((p) => p.reason);
}

describe('parseClientQuotaOverrides', () => {
  it('reads client-id:n entries into a record of whole numbers', () => {
    expect(overrides('client-a:5,client-b:15')).toEqual({ 'client-a': 5, 'client-b': 15 });
  });

  it('takes entries separated by commas, newlines or both, around spaces, and skips blanks and comments', () => {
    const text = ['# quotas agreed with the owners', ' orders : 5 , billing:7', '', 'reports.v2:100000 ,', ''].join(
      '\n',
    );
    expect(overrides(text)).toEqual({ orders: 5, billing: 7, 'reports.v2': 100_000 });
  });

  it('gives no overrides, and no problem, for an empty or blank text', () => {
    expect(overrides('')).toEqual({});
    expect(overrides(' , \n ')).toEqual({});
  });

  it('accepts the bounds 1 and 100000 and the longest client id', () => {
    const longId = 'a'.repeat(64);
    expect(overrides(`low:1,high:100000,${longId}:3`)).toEqual({ low: 1, high: 100_000, [longId]: 3 });
  });

  it('gives a record without a prototype, so inherited names are not quotas', () => {
    const result = overrides('constructor:4');
    expect(Object.getPrototypeOf(result)).toBeNull();
    expect(result['constructor']).toBe(4);
    expect(result['toString']).toBeUndefined();
    expect(result['hasOwnProperty']).toBeUndefined();
    expect(Object.keys(overrides(''))).toEqual([]);
    expect(Object.getPrototypeOf(overrides(''))).toBeNull();
  });

  it.each([
    ['without a colon', 'orders5'],
    ['without a number', 'orders:'],
    ['without a client id', ':5'],
    ['with zero', 'orders:0'],
    ['above 100000', 'orders:100001'],
    ['with a fraction', 'orders:1.5'],
    ['with a sign', 'orders:+5'],
    ['with an exponent', 'orders:1e3'],
    ['with a unit', 'orders:5/s'],
    ['with a client id starting with a dot', '.orders:5'],
    ['with a client id of 65 characters', `${'a'.repeat(65)}:5`],
    ['with a client id holding a space', 'my orders:5'],
    ['with a second colon', 'orders:5:6'],
  ])('refuses an entry %s, by position', (_label, entry) => {
    expect(reasons(`good:1,${entry}`)).toEqual([
      expect.stringMatching(/^entry 2 must be client-id:requests-per-second /),
    ]);
    expect(parse(`good:1,${entry}`).overrides).toEqual({ good: 1 });
  });

  it('refuses a repeated client id, pointing at both entries', () => {
    expect(reasons('orders:5,billing:6\norders:7')).toEqual(['entry 3 repeats the client id of entry 1']);
    expect(parse('orders:5,billing:6\norders:7').overrides).toEqual({ orders: 5, billing: 6 });
  });

  it('treats client ids as case-sensitive, like API_KEYS', () => {
    expect(overrides('orders:5,Orders:6')).toEqual({ orders: 5, Orders: 6 });
  });

  it('reports every bad entry, and never quotes one', () => {
    const text = 'SENTINEL-one,ok:2,SENTINEL-two:x,ok:3';
    const problems = parse(text).problems;
    expect(problems.map((p) => p.reason.slice(0, 8))).toEqual(['entry 1 ', 'entry 3 ', 'entry 4 ']);
    expect(JSON.stringify(problems)).not.toContain('SENTINEL');
  });

  it('names the variable it is given', () => {
    expect(parseClientQuotaOverrides('x', 'OTHER').problems.map((p) => p.variable)).toEqual(['OTHER']);
  });
});
