import { monotonicNow } from './slot-wait.js';

interface KnownRefusal {
  readonly ttl: number;
  readonly limit: number;
  /** Monotonic ms at which the shared store would admit the client again, at the earliest. */
  readonly until: number;
}

/**
 * What the shared store last said about clients over their quota, so that this replica refuses
 * them itself until then, without a Redis call (rate-limiter-flexible's inMemoryBlockOnConsumed).
 *
 * Sound because the sliding log (lua/client-quota-hit.lua) only grows until its oldest admission
 * leaves the window: refused hits are not recorded and other replicas' admissions only add, so
 * the shared store would refuse the client at least as long. The time counts from when the
 * question was sent, not from when its answer came, so a local refusal ends no later than the
 * shared store's would. A known refusal holds for the same window and any limit up to the one it
 * was counted at (a quota raised since may admit earlier). One entry per client id at most.
 */
export class OverQuotaMemory {
  private readonly refusals = new Map<string, KnownRefusal>();

  constructor(private readonly now: () => number = monotonicNow) {}

  /** Ms until `client` may be admitted, when it is known to be over its quota now; else undefined. */
  refusedFor(client: string, ttl: number, limit: number): number | undefined {
    const known = this.refusals.get(client);
    if (known === undefined) return undefined;
    const left = known.until - this.now();
    if (left <= 0) {
      this.refusals.delete(client);
      return undefined;
    }
    return known.ttl === ttl && limit <= known.limit ? left : undefined;
  }

  /** The shared store refused `client`, asked at `askedAt`, with a slot freeing `msUntilASlotFrees` later. */
  remember(client: string, ttl: number, limit: number, askedAt: number, msUntilASlotFrees: number): void {
    const until = askedAt + msUntilASlotFrees;
    if (until > this.now()) this.refusals.set(client, { ttl, limit, until });
  }
}
