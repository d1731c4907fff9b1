import type { EnvReader } from '../config/env-reader.js';
import { MAX_CLIENT_REQUESTS_PER_SECOND, parseClientQuotaOverrides } from './client-quota-overrides.js';

/** The vendor's budget, and how callers wait for it. */
export interface OutboundSettings {
  readonly qpsLimit: number;
  readonly windowMs: number;
  readonly maxWaitMs: number;
  /** Added to the window when spacing releases, to absorb jitter on the way to the vendor. */
  readonly safetyMarginMs: number;
}

export interface ClientQuotaSettings {
  /** Requests per second each client may make, unless overridden. */
  readonly perSecond: number;
  /** Per-client overrides, by client id (a null-prototype frozen record). */
  readonly overrides: Readonly<Record<string, number>>;
}

/** ZEGO_QPS_LIMIT, ZEGO_QPS_WINDOW_MS, RATE_LIMIT_MAX_WAIT_MS, RATE_LIMIT_SAFETY_MARGIN_MS. */
export function readOutboundSettings(read: EnvReader): OutboundSettings {
  return {
    qpsLimit: read.int('ZEGO_QPS_LIMIT', { default: 20, min: 1, max: 10_000 }),
    windowMs: read.int('ZEGO_QPS_WINDOW_MS', { default: 1000, min: 10, max: 60_000 }),
    maxWaitMs: read.int('RATE_LIMIT_MAX_WAIT_MS', { default: 2000, min: 0, max: 60_000 }),
    safetyMarginMs: read.int('RATE_LIMIT_SAFETY_MARGIN_MS', { default: 30, min: 0, max: 10_000 }),
  };
}

/** CLIENT_RATE_LIMIT and its CLIENT_RATE_LIMITS overrides. */
export function readClientQuotaSettings(read: EnvReader): ClientQuotaSettings {
  const perSecond = read.int('CLIENT_RATE_LIMIT', { default: 10, min: 1, max: MAX_CLIENT_REQUESTS_PER_SECOND });
  const parsed = parseClientQuotaOverrides(read.optional('CLIENT_RATE_LIMITS') ?? '', 'CLIENT_RATE_LIMITS');
  parsed.problems.forEach((p) => read.problem(p.variable, p.reason));
  return { perSecond, overrides: parsed.overrides };
}
