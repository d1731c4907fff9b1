import type { FairShare } from './outbound-rate-limiter.js';
import type { Priority } from './rate-limit.settings.js';
import type { SlotRules } from './slot-schedule.js';

/**
 * What each waiting client gets per second while every one of them keeps asking: the budget's
 * rate (limit per window plus margin), interactive first with batch's minimum share set aside
 * while both wait, each level split by weight. A client asking for less is served in full and
 * leaves the rest to the others; this is the share it may count on.
 */
export function fairShares(
  waiting: ReadonlyArray<{ client: string; priority: Priority; weight: number }>,
  rules: SlotRules & { readonly batchMinShare: number },
): FairShare[] {
  const perSecond = (rules.limit * 1000) / (rules.windowMs + rules.safetyMarginMs);
  const weightOf = (priority: Priority): number =>
    waiting.filter((entry) => entry.priority === priority).reduce((sum, entry) => sum + entry.weight, 0);
  const interactive = weightOf('interactive');
  const batch = weightOf('batch');
  const levelRate: Record<Priority, number> = {
    interactive: batch > 0 ? perSecond * (1 - rules.batchMinShare) : perSecond,
    batch: interactive > 0 ? perSecond * rules.batchMinShare : perSecond,
  };
  const levelWeight: Record<Priority, number> = { interactive, batch };
  return waiting.map(({ client, priority, weight }) => ({
    client,
    priority,
    perSecond: (levelRate[priority] * weight) / levelWeight[priority],
  }));
}
