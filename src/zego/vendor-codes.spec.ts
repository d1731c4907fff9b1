import { describe, expect, it } from '@jest/globals';
import { knownCodes, ruleForCode, type ZimOutcome } from './vendor-codes.js';

interface Expected {
  status: number;
  outcome: ZimOutcome;
  retryable: boolean;
  retryAfter: boolean;
}

const range = (first: number, last: number) =>
  Array.from({ length: last - first + 1 }, (_, i) => first + i);

const MISCONFIGURED: Expected = { status: 502, outcome: 'gateway-misconfigured', retryable: false, retryAfter: false };
const RATE_LIMITED: Expected = { status: 429, outcome: 'rate-limited', retryable: true, retryAfter: true };
const BUSY: Expected = { status: 503, outcome: 'vendor-busy', retryable: true, retryAfter: true };
const UNKNOWN: Expected = { status: 502, outcome: 'upstream-error', retryable: false, retryAfter: false };

/** The mapping the gateway promises, written out from the vendor's code list. */
const TABLE: [number, Expected][] = [
  [0, { status: 201, outcome: 'success', retryable: false, retryAfter: false }],
  [660000002, { status: 400, outcome: 'invalid-request', retryable: false, retryAfter: false }],
  [660500002, { status: 422, outcome: 'operator-not-registered', retryable: false, retryAfter: false }],
  [660200001, { status: 422, outcome: 'operator-not-registered', retryable: false, retryAfter: false }],
  [660300014, { status: 409, outcome: 'room-exists', retryable: false, retryAfter: false }],
  [660300005, RATE_LIMITED],
  [660300006, RATE_LIMITED],
  [7, RATE_LIMITED],
  [660300015, { status: 503, outcome: 'room-quota-exceeded', retryable: false, retryAfter: false }],
  [1, BUSY],
  [100000015, BUSY],
  [3, MISCONFIGURED],
  ...range(100000000, 100000014).map((code): [number, Expected] => [code, MISCONFIGURED]),
  [100000016, MISCONFIGURED],
  [100000017, MISCONFIGURED],
];

describe('ruleForCode', () => {
  it.each(TABLE)('maps %i as documented', (code, expected) => {
    const rule = ruleForCode(code);
    expect(rule.status).toBe(expected.status);
    expect(rule.outcome).toBe(expected.outcome);
    expect(rule.retryable).toBe(expected.retryable);
    if (expected.retryAfter) {
      expect(Number.isInteger(rule.retryAfterSeconds)).toBe(true);
      expect(rule.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    } else {
      expect(rule.retryAfterSeconds).toBeUndefined();
    }
    expect(rule.message.length).toBeGreaterThan(0);
  });

  it.each([42, 2, 4, 660000001, 660000003, 99999999, 100000018, 660300016, -1])(
    'maps the unlisted code %i to a non-retryable upstream error',
    (code) => {
      const rule = ruleForCode(code);
      expect(rule.status).toBe(UNKNOWN.status);
      expect(rule.outcome).toBe(UNKNOWN.outcome);
      expect(rule.retryable).toBe(false);
      expect(rule.retryAfterSeconds).toBeUndefined();
    },
  );

  it('gives each outcome its own message, shared by all its codes', () => {
    // Codes with the same rule share the message; different outcomes never do.
    const messages = new Map<ZimOutcome, string>();
    for (const [code] of TABLE) {
      const rule = ruleForCode(code);
      const seen = messages.get(rule.outcome);
      if (seen === undefined) messages.set(rule.outcome, rule.message);
      else expect(rule.message).toBe(seen);
    }
    expect(new Set(messages.values()).size).toBe(messages.size);
  });
});

describe('knownCodes', () => {
  it('lists exactly the codes of the documented table', () => {
    expect([...knownCodes()].sort((a, b) => a - b)).toEqual(
      TABLE.map(([code]) => code).sort((a, b) => a - b),
    );
  });

  it('lists no code twice', () => {
    expect(new Set(knownCodes()).size).toBe(knownCodes().length);
  });
});
