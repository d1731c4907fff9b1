import { EventEmitter } from 'node:events';
import { describe, expect, it, jest } from '@jest/globals';
import type { RedisClient } from './redis-connection.js';
import { settledState } from '../../test/support/async-probes.js';
import { RedisCallFailed } from './redis-call-failed.js';
import { RedisDownPolicy, type SharedStoreMode } from './redis-down-policy.js';
import type { RedisDownFallback } from './redis.settings.js';
import { SharedStoreUnavailable } from './shared-store-unavailable.js';

/** The parts of an ioredis connection the policy watches: its status and its events. */
class FakeConnection extends EventEmitter {
  status = 'connecting';

  becomeReady(): void {
    this.status = 'ready';
    this.emit('ready');
  }

  drop(status = 'reconnecting'): void {
    this.status = status;
    this.emit('close');
  }
}

function setUp(fallback: RedisDownFallback = 'local') {
  const connection = new FakeConnection();
  let time = 0;
  const log = jest.fn();
  const warn = jest.fn();
  const policy = new RedisDownPolicy(
    connection as unknown as RedisClient,
    { fallback, assumedReplicas: 3, slowRoundTripMs: 75 },
    { log, warn, error: jest.fn() },
    () => time,
  );
  const modes: SharedStoreMode[] = [];
  policy.onModeChange((mode) => modes.push(mode));
  return { connection, policy, modes, log, warn, advance: (ms: number) => (time += ms) };
}

/** The close handler looks at the status on the next turn (a quit ends as 'end' right after 'close'). */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const answering = () => Promise.resolve('from Redis');
const failing = () => Promise.reject(new RedisCallFailed(new Error('Command timed out')));
const local = () => 'in process';

describe('RedisDownPolicy', () => {
  it('starts in the fallback mode and turns shared, once, when the connection is ready', () => {
    const { connection, policy, modes, log } = setUp('reject');
    expect(policy.mode).toBe('reject');
    connection.becomeReady();
    connection.becomeReady();
    expect(policy.mode).toBe('shared');
    expect(modes).toEqual(['shared']);
    expect(log).toHaveBeenCalledTimes(1);
    expect(log.mock.calls[0]![0]).toBe('Outbound limiter mode: shared (the Redis connection is ready)');
  });

  it('does not return to shared on the answer of a call that was on its way when another call failed', async () => {
    const { connection, policy, modes } = setUp('local');
    connection.becomeReady();
    let answerEarlier!: (value: string) => void;
    const earlier = policy.run('the shared vendor call budget', () => new Promise<string>((resolve) => (answerEarlier = resolve)), local);
    await expect(policy.run('the client quota store', failing, local)).resolves.toBe('in process');
    answerEarlier('from Redis');
    await expect(earlier).resolves.toBe('from Redis');
    expect(policy.mode).toBe('local');
    expect(modes).toEqual(['shared', 'local']);
    // A call sent after the failure is news of Redis again.
    await expect(policy.probe('the fleet membership', answering)).resolves.toBe(true);
    expect(modes).toEqual(['shared', 'local', 'shared']);
  });

  it('runs the Redis call while shared, and the fallback only when that call fails with RedisCallFailed', async () => {
    const { connection, policy, modes, warn } = setUp();
    connection.becomeReady();
    await expect(policy.run('the test store', answering, local)).resolves.toBe('from Redis');
    await expect(policy.run('the test store', failing, local)).resolves.toBe('in process');
    expect(policy.mode).toBe('local');
    expect(modes).toEqual(['shared', 'local']);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(
      /^Outbound limiter mode: local \(Redis did not answer for the test store: Command timed out\); /,
    );
  });

  it('passes an error that is not Redis trouble on, and stays shared', async () => {
    const { connection, policy, modes } = setUp();
    connection.becomeReady();
    const bug = new TypeError('a bug, not an outage');
    await expect(policy.run('the test store', () => Promise.reject(bug), local)).rejects.toBe(bug);
    expect(policy.mode).toBe('shared');
    expect(modes).toEqual(['shared']);
  });

  it('tries Redis again only after a second, however often it is asked, while the connection stays up', async () => {
    const { connection, policy, advance } = setUp();
    connection.becomeReady();
    await policy.run('the test store', failing, local);
    const shared = jest.fn(answering);
    advance(999);
    await expect(policy.run('the test store', shared, local)).resolves.toBe('in process');
    expect(shared).not.toHaveBeenCalled();
    advance(1);
    await expect(policy.run('the test store', shared, local)).resolves.toBe('from Redis');
    expect(policy.mode).toBe('shared');
  });

  it('does not try Redis while the connection is down, and is back as soon as it is ready', async () => {
    const { connection, policy, modes } = setUp();
    connection.becomeReady();
    connection.drop();
    await nextTurn();
    expect(policy.mode).toBe('local');
    const shared = jest.fn(answering);
    await expect(policy.run('the test store', shared, local)).resolves.toBe('in process');
    expect(shared).not.toHaveBeenCalled();
    connection.becomeReady();
    expect(modes).toEqual(['shared', 'local', 'shared']);
  });

  it('takes a deliberate quit for no outage', async () => {
    const { connection, policy } = setUp();
    connection.becomeReady();
    connection.drop('end');
    await nextTurn();
    expect(policy.mode).toBe('shared');
  });

  it('under reject, refuses without Redis with a 503 naming the store, at once', async () => {
    const { policy } = setUp('reject');
    const refused = policy.run('the test store', answering, local);
    expect(await settledState(refused)).toBe('rejected');
    const error = await refused.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SharedStoreUnavailable);
    expect(error).toMatchObject({
      status: 503,
      publicMessage: 'The test store is unavailable; retry later',
      details: { retryAfterSeconds: 1 },
    });
  });

  it('cuts a replica\'s own share for RATE_LIMIT_REPLICAS until told the fleet Redis counted, at least 1', () => {
    const { policy } = setUp();
    expect(policy.fleetSize).toBe(3);
    expect([policy.ownShareOf(10), policy.ownShareOf(3), policy.ownShareOf(2)]).toEqual([3, 1, 1]);
    policy.fleetCounted(5);
    expect(policy.fleetSize).toBe(5);
    expect([policy.ownShareOf(10), policy.ownShareOf(4)]).toEqual([2, 1]);
    // A count that is no fleet (nothing seen, a bad reading) leaves the last one.
    for (const nonsense of [0, -1, 2.5, Number.NaN]) policy.fleetCounted(nonsense);
    expect(policy.fleetSize).toBe(5);
    policy.fleetCounted(1);
    expect(policy.ownShareOf(7)).toBe(7);
  });

  it('without any Redis configured is local for good, and never logs a change', async () => {
    const log = jest.fn();
    const policy = new RedisDownPolicy(null, { fallback: 'reject', assumedReplicas: 3, slowRoundTripMs: 75 }, { log, warn: log, error: log });
    expect(policy.mode).toBe('local');
    expect(policy.assumedReplicas).toBe(3);
    expect(log).not.toHaveBeenCalled();
  });
});
