import type { AppConfig } from '../config/app-config.js';
import type { SlotRules } from './slot-schedule.js';

/** The fleet's budget: ZEGO_QPS_LIMIT calls per ZEGO_QPS_WINDOW_MS, spaced with the safety margin. */
export function outboundRules(config: AppConfig): SlotRules {
  const { qpsLimit, windowMs, safetyMarginMs } = config.outbound;
  return { limit: qpsLimit, windowMs, safetyMarginMs };
}

/**
 * One replica's share while Redis is down: floor(limit / replicas) per window, so the assumed
 * fleet stays within the budget together. With more replicas than calls per window, each gets
 * one call per a proportionally longer window.
 */
export function localShareRules(config: AppConfig): SlotRules {
  const { qpsLimit, windowMs, safetyMarginMs, assumedReplicas } = config.outbound;
  const share = Math.floor(qpsLimit / assumedReplicas);
  if (share >= 1) return { limit: share, windowMs, safetyMarginMs };
  return { limit: 1, windowMs: windowMs * Math.ceil(assumedReplicas / qpsLimit), safetyMarginMs };
}
