import type { RedisDownSettings } from '../redis/redis.settings.js';
import type { FailoverRules } from './failover-outbound-rate-limiter.js';
import type { LocalBudgetRules } from './local-outbound-rate-limiter.js';
import type { OutboundSettings } from './rate-limit.settings.js';
import type { SchedulerRules } from './redis-outbound-rate-limiter.js';
import type { SlotRules } from './slot-schedule.js';

interface BudgetConfig {
  readonly outbound: OutboundSettings;
  readonly redisDown: RedisDownSettings;
}

/**
 * How far ahead of now the fleet's scheduler grants slots at least, and while Redis is quick:
 * enough for a grant to reach its replica before the slot (every replica with callers waiting
 * calls the script when a slot enters the horizon, so it collects a grant another made within a
 * timer's jitter and a Redis round trip); short, because a client arriving with nothing waiting
 * waits about this long behind the grants already made, and a replica losing Redis knows the
 * fleet's calls end this soon after its last contact. A slower Redis lengthens it (grantTiming).
 */
export const GRANT_HORIZON_MS = 60;
/** A member's lease; renewed every HEARTBEAT_MS, and by every call to the scheduler. */
export const LEASE_MS = 500;
export const HEARTBEAT_MS = 125;
/**
 * How long the fleet leaves room for a member whose lease lapsed: it may be cut off from Redis and
 * sending its own share. A member that stopped for good (a crash) costs its share for this long;
 * one that shuts down gracefully leaves at once.
 */
export const LAPSE_MEMORY_MS = 60_000;

/** The fleet's budget: ZEGO_QPS_LIMIT calls per ZEGO_QPS_WINDOW_MS, spaced with the safety margin. */
export function outboundRules(config: Pick<BudgetConfig, 'outbound'>): SlotRules {
  const { qpsLimit, windowMs, safetyMarginMs } = config.outbound;
  return { limit: qpsLimit, windowMs, safetyMarginMs };
}

/** A client's weight: CLIENT_WEIGHTS, 1 for a client not named. */
export function weightOf(config: Pick<BudgetConfig, 'outbound'>): (client: string) => number {
  const { weights } = config.outbound;
  return (client) => weights[client] ?? 1;
}

/** The fleet's scheduler: the budget, the fairness rules, the grant horizon and the leases. */
export function schedulerRules(config: BudgetConfig): SchedulerRules {
  return {
    ...outboundRules(config),
    horizonMs: GRANT_HORIZON_MS,
    slowRoundTripMs: config.redisDown.slowRoundTripMs,
    leaseMs: LEASE_MS,
    memoryMs: LAPSE_MEMORY_MS,
    batchMinShare: config.outbound.batchMinShare,
    weightOf: weightOf(config),
  };
}

/** One process without Redis: the whole budget, shared fairly between its own callers. */
export function standaloneRules(config: Pick<BudgetConfig, 'outbound'>): LocalBudgetRules {
  return {
    ...outboundRules(config),
    batchMinShare: config.outbound.batchMinShare,
    weightOf: weightOf(config),
    shareName: "this replica's vendor budget",
  };
}

/**
 * One replica's share while Redis is down, for a fleet of `size`: floor(limit / size) per window,
 * so the fleet stays within the budget together. With more replicas than calls per window, each
 * gets one call per a proportionally longer window.
 */
export function localShareRules(config: Pick<BudgetConfig, 'outbound'>, size: number): LocalBudgetRules {
  const { qpsLimit, windowMs } = config.outbound;
  const share = Math.floor(qpsLimit / Math.max(1, size));
  return {
    ...standaloneRules(config),
    ...(share >= 1 ? { limit: share } : { limit: 1, windowMs: windowMs * Math.ceil(size / qpsLimit) }),
    shareName: "this replica's own share of the vendor budget (Redis is unreachable)",
  };
}

export function failoverRules(config: BudgetConfig): FailoverRules {
  const { windowMs, safetyMarginMs } = config.outbound;
  return {
    horizonMs: GRANT_HORIZON_MS,
    spanMs: windowMs + safetyMarginMs,
    heartbeatMs: HEARTBEAT_MS,
    slowRoundTripMs: config.redisDown.slowRoundTripMs,
  };
}
