import { parseClientValues, type ClientValueRule } from '../config/client-entries.js';
import type { EnvReader } from '../config/env-reader.js';
import { MAX_CLIENT_REQUESTS_PER_SECOND, parseClientQuotaOverrides } from './client-quota-overrides.js';

/** `interactive` (people waiting) is served before `batch` (background work). */
export const PRIORITIES = ['interactive', 'batch'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** RATE_LIMIT_BATCH_MIN_SHARE when unset, and the in-process limiter's when not given. */
export const DEFAULT_BATCH_MIN_SHARE = 0.1;

/** The vendor's budget, how callers wait for it, and how it is shared between them. */
export interface OutboundSettings {
  readonly qpsLimit: number;
  readonly windowMs: number;
  /** Longest an interactive request waits for a slot. */
  readonly maxWaitMs: number;
  /** Longest a batch request waits for a slot. */
  readonly maxWaitMsBatch: number;
  /** Added to the window when spacing releases, to absorb jitter on the way to the vendor. */
  readonly safetyMarginMs: number;
  /** The share of slots batch work gets at least while it waits beside interactive work. */
  readonly batchMinShare: number;
  /** CLIENT_WEIGHTS, by client id (a null-prototype frozen record); 1 for a client not named. */
  readonly weights: Readonly<Record<string, number>>;
  /** CLIENT_PRIORITIES, by client id; `interactive` for a client not named. */
  readonly priorities: Readonly<Record<string, Priority>>;
}

export interface ClientQuotaSettings {
  /** Requests per second each client may make, unless overridden. */
  readonly perSecond: number;
  /** Per-client overrides, by client id (a null-prototype frozen record). */
  readonly overrides: Readonly<Record<string, number>>;
  /** How long a quota refusal is held before it is answered (CLIENT_QUOTA_REFUSAL_DELAY_MS; 0: at once). */
  readonly refusalDelayMs: number;
}

const MAX_WEIGHT = 1000;
const WEIGHT = /^(?:\d{1,4})(?:\.\d{1,3})?$/;
const SHARE = /^(?:0(?:\.\d{1,4})?|1(?:\.0{1,4})?)$/;

/**
 * ZEGO_QPS_LIMIT, ZEGO_QPS_WINDOW_MS, RATE_LIMIT_MAX_WAIT_MS(_BATCH), RATE_LIMIT_SAFETY_MARGIN_MS,
 * RATE_LIMIT_BATCH_MIN_SHARE, CLIENT_WEIGHTS, CLIENT_PRIORITIES. Every wait stays inside
 * ZEGO_CALL_DEADLINE_MS when a call is made: ZimClient cuts it to what the deadline leaves.
 */
export function readOutboundSettings(read: EnvReader): OutboundSettings {
  const maxWaitMs = read.int('RATE_LIMIT_MAX_WAIT_MS', { default: 2000, min: 0, max: 60_000 });
  // Batch may wait longer, never shorter; unset, it follows a raised interactive wait.
  const maxWaitMsBatch = read.int('RATE_LIMIT_MAX_WAIT_MS_BATCH', {
    default: Math.max(8000, maxWaitMs || 0),
    min: 0,
    max: 600_000,
  });
  if (maxWaitMsBatch < maxWaitMs) {
    read.problem('RATE_LIMIT_MAX_WAIT_MS_BATCH', 'must be at least RATE_LIMIT_MAX_WAIT_MS');
  }
  return {
    qpsLimit: read.int('ZEGO_QPS_LIMIT', { default: 20, min: 1, max: 10_000 }),
    windowMs: read.int('ZEGO_QPS_WINDOW_MS', { default: 1000, min: 10, max: 60_000 }),
    maxWaitMs,
    maxWaitMsBatch,
    safetyMarginMs: read.int('RATE_LIMIT_SAFETY_MARGIN_MS', { default: 30, min: 0, max: 10_000 }),
    batchMinShare: readShare(read, 'RATE_LIMIT_BATCH_MIN_SHARE', DEFAULT_BATCH_MIN_SHARE),
    weights: readClientValues(read, 'CLIENT_WEIGHTS', {
      valueName: 'weight',
      rule: `a number above 0, at most ${MAX_WEIGHT}, with at most 3 decimals`,
      parse: (text) => {
        const value = WEIGHT.test(text) ? Number(text) : Number.NaN;
        return value > 0 && value <= MAX_WEIGHT ? value : undefined;
      },
    }),
    priorities: readClientValues(read, 'CLIENT_PRIORITIES', {
      valueName: 'priority',
      rule: PRIORITIES.join(' or '),
      parse: (text) => ((PRIORITIES as readonly string[]).includes(text) ? (text as Priority) : undefined),
    }),
  };
}

/** CLIENT_RATE_LIMIT, its CLIENT_RATE_LIMITS overrides, CLIENT_QUOTA_REFUSAL_DELAY_MS. */
export function readClientQuotaSettings(read: EnvReader): ClientQuotaSettings {
  const perSecond = read.int('CLIENT_RATE_LIMIT', { default: 10, min: 1, max: MAX_CLIENT_REQUESTS_PER_SECOND });
  const parsed = parseClientQuotaOverrides(read.optional('CLIENT_RATE_LIMITS') ?? '', 'CLIENT_RATE_LIMITS');
  parsed.problems.forEach((p) => read.problem(p.variable, p.reason));
  const refusalDelayMs = read.int('CLIENT_QUOTA_REFUSAL_DELAY_MS', { default: 100, min: 0, max: 1000 });
  return { perSecond, overrides: parsed.overrides, refusalDelayMs };
}

function readShare(read: EnvReader, name: string, fallback: number): number {
  const raw = read.optional(name);
  if (raw === undefined) return fallback;
  const value = SHARE.test(raw) ? Number(raw) : Number.NaN;
  if (!(value > 0 && value < 1)) {
    read.problem(name, 'must be a fraction above 0 and below 1, e.g. 0.1');
    return fallback;
  }
  return value;
}

function readClientValues<T>(read: EnvReader, name: string, rule: ClientValueRule<T>): Record<string, T> {
  const { values, problems } = parseClientValues(read.optional(name) ?? '', name, rule);
  problems.forEach((p) => read.problem(p.variable, p.reason));
  return values;
}
