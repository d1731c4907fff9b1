/**
 * A Redis that answers, too slowly to schedule through: a replica reaches its Redis through a
 * proxy that delays every chunk (in order), and takes Redis as down for the vendor budget once
 * its typical round trip passes the threshold, under the Redis-down policy, while the policy (the
 * other stores) stays shared. It lets its lease lapse, starts its own share only when no shared
 * grant can still share a window with it, and comes back when the round trip does.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { until } from '../../test/support/async-probes.js';
import { carriedMembers, failoverReplicas, messages } from '../../test/support/failover-replicas.js';
import { startPrivateRedis, type TestRedis } from '../../test/support/redis-server.js';
import { TcpProxy } from '../../test/support/tcp-proxy.js';
import { SharedStoreUnavailable } from '../redis/shared-store-unavailable.js';
import type { FailoverRules } from './failover-outbound-rate-limiter.js';
import type { LocalBudgetRules } from './local-outbound-rate-limiter.js';
import type { SchedulerRules } from './redis-outbound-rate-limiter.js';

const SLOW_MS = 40;
/** Each way: a round trip of about 60 ms, over SLOW_MS. */
const SLOW_ONE_WAY_MS = 30;
const SHARED_RULES: SchedulerRules = {
  limit: 100,
  windowMs: 200,
  safetyMarginMs: 0,
  horizonMs: 30,
  slowRoundTripMs: SLOW_MS,
  leaseMs: 300,
  memoryMs: 5000,
  batchMinShare: 0.1,
  weightOf: () => 1,
};
const SPAN_MS = 200;
const FAILOVER_RULES: FailoverRules = { horizonMs: SHARED_RULES.horizonMs, spanMs: SPAN_MS, heartbeatMs: 50, slowRoundTripMs: SLOW_MS };
/** A long window, so the local calls stay recent enough to be carried back into the log. */
const LOCAL_RULES: LocalBudgetRules = { limit: 1000, windowMs: 60_000, safetyMarginMs: 0 };
const ANY_WAIT = { maxWaitMs: 10 * 60_000 };

const { replica, observer } = failoverReplicas({ shared: SHARED_RULES, local: LOCAL_RULES, failover: FAILOVER_RULES });

let server: TestRedis;
let proxy: TcpProxy;
let via: string;
beforeEach(async () => {
  server = await startPrivateRedis();
  proxy = new TcpProxy({ host: '127.0.0.1', port: server.port });
  via = `redis://127.0.0.1:${await proxy.listen()}`;
});
afterEach(() => proxy.close());

const slowPath = (): void => proxy.shape({ upstream: { delayMs: SLOW_ONE_WAY_MS }, downstream: { delayMs: SLOW_ONE_WAY_MS } });
const quickPath = (): void => proxy.shape({});

/** A replica through the proxy, shared, with one call in the log. */
async function sharedReplica(options: Partial<Parameters<typeof replica>[0]> = {}) {
  const r = replica({ server, via, ...options });
  await until(() => r.limiter.mode === 'shared', 'the limiter is shared');
  await r.limiter.acquire(ANY_WAIT);
  // From here on: the changes a test makes (the start-up's own change to shared is not one).
  r.budgetModes.length = 0;
  return r;
}

describe('a replica whose Redis turns slow', () => {
  it('takes Redis as down for the budget alone, lets its lease lapse, and starts its own share after the fleet’s reach', async () => {
    const r = await sharedReplica();
    slowPath();
    await until(() => r.limiter.mode === 'local', 'the budget is on the local share');
    const view = r.shared.fleetView()!;

    expect(r.budgetModes).toEqual([{ mode: 'local', reason: 'slow' }]);
    expect(messages(r.warn)).toEqual([expect.stringMatching(/^Outbound limiter mode: local \(slow: the typical Redis round trip is \d+ ms, over RATE_LIMIT_SLOW_REDIS_MS=40\)/)]);
    // Quotas and idempotency keys stay on Redis: the policy did not change.
    expect(r.policy.mode).toBe('shared');
    expect(r.modes).toEqual(['shared']);

    await r.limiter.acquire(ANY_WAIT);
    // Nothing of its own before its lease ended and every grant the fleet could make until then left the window.
    expect(r.localCalls[0]).toBeGreaterThanOrEqual(view.leaseExpiresAt + view.reachMs + SPAN_MS - 1);

    // The lease is left to lapse: the fleet subtracts this replica's share from then on.
    const look = observer(server);
    await until(
      async () => {
        const [[, lease], [, time]] = (await look.multi().zscore(r.budget.members, r.replicaId).time().exec()) as [
          [null, string],
          [null, [string, string]],
        ];
        return Number(lease) <= Number(time[0]) * 1000 + Number(time[1]) / 1000;
      },
      'the lease lapsed',
      5000,
    );
  });

  it('counts the lease that script runs still on their way renew when they land: its own share starts after it', async () => {
    const r = await sharedReplica();
    slowPath();
    // A caller every 10 ms: with a 60 ms round trip, several runs are on their way when the verdict comes.
    const callers: Array<Promise<void>> = [];
    while (r.limiter.mode === 'shared') {
      callers.push(r.limiter.acquire(ANY_WAIT));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const atTheChange = r.shared.fleetView()!.leaseExpiresAt;
    await r.shared.settled();
    const landed = r.shared.fleetView()!;
    await Promise.all(callers);

    // The runs that landed after the change renewed the lease past what the replica knew then …
    expect(landed.leaseExpiresAt).toBeGreaterThan(atTheChange);
    // … and nothing of its own went before that lease, the fleet's reach and a window had passed.
    expect(r.localCalls.length).toBeGreaterThan(0);
    expect(Math.min(...r.localCalls)).toBeGreaterThanOrEqual(landed.leaseExpiresAt + landed.reachMs + SPAN_MS - 1);
  });

  it('comes back to shared once the round trip recovers, with its own calls carried into the log', async () => {
    // A fleet window of a minute: the script drops calls older than one window.
    const r = await sharedReplica({ sharedRules: { ...SHARED_RULES, limit: 1000, windowMs: 60_000 } });
    slowPath();
    await until(() => r.limiter.mode === 'local', 'the budget is on the local share');
    await r.limiter.acquire(ANY_WAIT);
    await r.limiter.acquire(ANY_WAIT);

    quickPath();
    await until(() => r.limiter.mode === 'shared', 'the budget is shared again');
    expect(r.budgetModes).toEqual([
      { mode: 'local', reason: 'slow' },
      { mode: 'shared', reason: 'recovered' },
    ]);
    expect(messages(r.log)).toContainEqual(expect.stringMatching(/^Outbound limiter mode: shared \(the typical Redis round trip is back to \d+ ms\)/));
    await r.limiter.acquire(ANY_WAIT);
    expect(messages(r.log)).toContainEqual(expect.stringContaining('Outbound limiter hand-over'));
    const look = observer(server);
    await until(async () => (await carriedMembers(look, r.budget)).length === 2, 'both local calls carried in');
    expect(r.localCalls).toHaveLength(2);
  });

  it('refuses with 503 under RATE_LIMIT_ON_REDIS_DOWN=reject, sending nothing', async () => {
    // A command timeout far above the slow round trip: a starved test worker must not turn slow into unreachable.
    const r = await sharedReplica({ fallback: 'reject', commandTimeoutMs: 2_000 });
    slowPath();
    await until(() => r.limiter.mode === 'reject', 'the budget is refused');
    await expect(r.limiter.acquire(ANY_WAIT)).rejects.toBeInstanceOf(SharedStoreUnavailable);
    expect(r.budgetModes).toEqual([{ mode: 'reject', reason: 'slow' }]);
    expect(r.localCalls).toHaveLength(0);
  });

  it('serves the callers that were waiting for a grant on its own share, rather than leaving them to their deadline', async () => {
    // One shared call in five seconds (the horizon reaches one spacing ahead): the next caller is
    // granted the following slot, the two after it queue for theirs.
    const r = await sharedReplica({ sharedRules: { ...SHARED_RULES, limit: 1, windowMs: 5000 } });
    const waiting = [r.limiter.acquire(ANY_WAIT), r.limiter.acquire(ANY_WAIT), r.limiter.acquire(ANY_WAIT)];
    slowPath();
    await Promise.all(waiting);
    expect(r.limiter.mode).toBe('local');
    expect(r.budgetModes).toEqual([{ mode: 'local', reason: 'slow' }]);
    // Each of the four callers went out once: on a shared slot or on its own share.
    const shared = await observer(server).zcard(r.budget.slots);
    expect(r.localCalls.length).toBeGreaterThanOrEqual(2);
    expect(shared + r.localCalls.length).toBe(4);
  });
});
