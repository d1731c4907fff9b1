// The first-come-first-served limiter's src/rate-limit/outbound-rules.ts as of a8dab26, kept as the baseline of
// npm run bench:fairness and npm run bench; only the settings type it reads is its own (see bench/fcfs-gateway.ts).
import type { HandoverRules } from './redis-outbound-rate-limiter.js';
import type { SlotRules } from '../../src/rate-limit/slot-schedule.js';

/** The settings the budget is cut from (the fields of the gateway's outbound and Redis-down settings these rules read). */
interface BudgetConfig {
  readonly outbound: { readonly qpsLimit: number; readonly windowMs: number; readonly safetyMarginMs: number };
  readonly redisDown: { readonly assumedReplicas: number };
}

/** The fleet's budget: ZEGO_QPS_LIMIT calls per ZEGO_QPS_WINDOW_MS, spaced with the safety margin. */
export function outboundRules(config: Pick<BudgetConfig, 'outbound'>): SlotRules {
  const { qpsLimit, windowMs, safetyMarginMs } = config.outbound;
  return { limit: qpsLimit, windowMs, safetyMarginMs };
}

/**
 * One replica's share while Redis is down: floor(limit / replicas) per window, so the assumed
 * fleet stays within the budget together. With more replicas than calls per window, each gets
 * one call per a proportionally longer window.
 */
export function localShareRules(config: BudgetConfig): SlotRules {
  const { qpsLimit, windowMs, safetyMarginMs } = config.outbound;
  const { assumedReplicas } = config.redisDown;
  const share = Math.floor(qpsLimit / assumedReplicas);
  if (share >= 1) return { limit: share, windowMs, safetyMarginMs };
  return { limit: 1, windowMs: windowMs * Math.ceil(assumedReplicas / qpsLimit), safetyMarginMs };
}

/**
 * After Redis was unreachable, the shared log leaves room for the other replicas' shares for two
 * windows: long enough for every replica to reconnect (at most 250 ms apart) or to probe Redis
 * again (1 s) and write its own in-process calls into the log. With more replicas than calls per
 * window there is no room to leave, and the hand-over keeps one call per window.
 */
export function handoverRules(config: BudgetConfig): HandoverRules {
  const { qpsLimit, windowMs, safetyMarginMs } = config.outbound;
  const { assumedReplicas } = config.redisDown;
  const share = localShareRules(config);
  // A share's window is never shorter than the fleet's: at most share.limit of its calls in one.
  return {
    limit: Math.max(1, qpsLimit - (assumedReplicas - 1) * share.limit),
    durationMs: 2 * (windowMs + safetyMarginMs),
  };
}
