import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { RedisClients } from '../../test/support/redis-clients.js';
import { startPrivateRedis, startTestRedis, stopAllRedis, type TestRedis } from '../../test/support/redis-server.js';
import { scheduleScriptRules } from '../rate-limit/redis-outbound-rate-limiter.js';
import { LuaScript } from './lua-script.js';

/** Two of the features' scripts, which the tests run as they are. */
const QUOTA_HIT = new URL('../rate-limit/lua/client-quota-hit.lua', import.meta.url);
const SCHEDULE = new URL('../rate-limit/lua/schedule-outbound.lua', import.meta.url);

/** Clients opened by the suite; each test's are closed after it, also when it failed. */
const clients = new RedisClients();

/** How often the server ran a command since CONFIG RESETSTAT (INFO commandstats). */
async function calls(redis: Redis, command: string): Promise<number> {
  const info = await redis.info('commandstats');
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : 0;
}

/** A client-quota-hit key of its own for each test. */
const freshKey = (): string => `test:lua-script:{${randomUUID()}}`;

/** A stand-in for the parts of ioredis LuaScript uses. */
function fakeRedis(evalsha: (...args: unknown[]) => Promise<unknown>) {
  const evalFn = jest.fn(async (..._args: unknown[]): Promise<unknown> => 'from EVAL');
  const evalshaFn = jest.fn(evalsha);
  return { redis: { evalsha: evalshaFn, eval: evalFn } as unknown as Redis, evalFn, evalshaFn };
}

afterEach(() => clients.closeAll());
afterAll(stopAllRedis);

describe('LuaScript.load', () => {
  it('reads the source from the location it is given and names it by its SHA1', () => {
    const script = LuaScript.load(QUOTA_HIT);
    const source = readFileSync(QUOTA_HIT, 'utf8');
    expect(script.name).toBe('client-quota-hit.lua');
    expect(script.source).toBe(source);
    expect(script.sha1).toBe(createHash('sha1').update(source).digest('hex'));
    expect(LuaScript.load(SCHEDULE).sha1).not.toBe(script.sha1);
  });

  it('fails at once for a script file that does not exist', () => {
    expect(() => LuaScript.load(new URL('../rate-limit/lua/no-such-script.lua', import.meta.url))).toThrow(/ENOENT/);
  });
});

describe('LuaScript.run against Redis', () => {
  let server: TestRedis;

  beforeAll(async () => {
    server = await startTestRedis();
  });

  it('runs the script with its keys and arguments and returns its reply', async () => {
    const redis = clients.plain(server.url);
    const script = LuaScript.load(QUOTA_HIT);
    const key = freshKey();

    // limit 2, window 60 s: two admissions, then a refusal.
    const first = await script.run(redis, [key], [2, 60_000, 'first']);
    const second = await script.run(redis, [key], [2, 60_000, 'second']);
    const third = await script.run(redis, [key], [2, 60_000, 'third']);

    expect(first).toEqual([1, 1, expect.any(String)]);
    expect(second).toEqual([1, 2, expect.any(String)]);
    expect(third).toEqual([0, 2, expect.any(String)]);
    expect(await redis.zrange(key, '0', '-1')).toEqual(['first', 'second']);
  });

  it('rethrows an error of the script itself, without sending the source', async () => {
    const redis = clients.plain(server.url);
    const script = LuaScript.load(QUOTA_HIT);
    const key = freshKey();
    await redis.set(key, 'not a sorted set');
    const evalSpy = jest.spyOn(redis, 'eval');

    await expect(script.run(redis, [key], [2, 60_000, 'id'])).rejects.toThrow(/WRONGTYPE/);
    expect(evalSpy).not.toHaveBeenCalled();
    expect(await redis.get(key)).toBe('not a sorted set');
  });
});

describe('LuaScript.run when Redis does not know the script', () => {
  let server: TestRedis;

  beforeAll(async () => {
    // SCRIPT FLUSH and CONFIG RESETSTAT touch the whole server: a private one.
    server = await startPrivateRedis();
  });

  it('after SCRIPT FLUSH sends the source once (EVAL), after which the SHA1 is cached', async () => {
    const redis = clients.plain(server.url);
    const script = LuaScript.load(QUOTA_HIT);
    const key = freshKey();

    await script.run(redis, [key], [5, 60_000, 'before-flush']);
    await redis.script('FLUSH');
    expect(await redis.script('EXISTS', script.sha1)).toEqual([0]);
    await redis.config('RESETSTAT');

    const reply = await script.run(redis, [key], [5, 60_000, 'after-flush']);

    expect(reply).toEqual([1, 2, expect.any(String)]);
    expect(await redis.zrange(key, '0', '-1')).toEqual(['before-flush', 'after-flush']);
    // One EVALSHA answered NOSCRIPT, then one EVAL ran the source.
    expect(await calls(redis, 'evalsha')).toBe(1);
    expect(await calls(redis, 'eval')).toBe(1);
    expect(await redis.script('EXISTS', script.sha1)).toEqual([1]);

    // From now on EVALSHA alone does it.
    await script.run(redis, [key], [5, 60_000, 'cached']);
    expect(await calls(redis, 'evalsha')).toBe(2);
    expect(await calls(redis, 'eval')).toBe(1);
    expect(await redis.zcard(key)).toBe(3);
  });

  it('on a server that never saw the script (first call) loads it the same way', async () => {
    const redis = clients.plain(server.url);
    await redis.script('FLUSH');
    const script = LuaScript.load(SCHEDULE);
    const budget = `test:lua-script:{${randomUUID()}}`;
    const keys = ['slots', 'interactive', 'batch', 'tickets', 'fair', 'granted', 'deadlines', 'members', 'shares', 'lines', 'reaches'].map((k) => `${budget}:${k}`);
    const rules = scheduleScriptRules({
      limit: 3,
      windowMs: 1000,
      safetyMarginMs: 0,
      horizonMs: 60,
      slowRoundTripMs: 75,
      leaseMs: 500,
      memoryMs: 60_000,
      batchMinShare: 0.1,
      weightOf: () => 1,
    });
    const ticket = { id: 'only', client: 'solo', weight: 1, level: 'i', maxWaitMs: 1000 };

    const reply = JSON.parse(String(await script.run(redis, keys, [JSON.stringify({ replica: 'r1', rules, ticket })])));

    expect(reply.ticket).toMatchObject({ state: 'granted', slot: 0 });
    expect(await redis.zcard(keys[0]!)).toBe(1);
    expect(await redis.script('EXISTS', script.sha1)).toEqual([1]);
  });
});

describe('LuaScript.run error handling (no server needed)', () => {
  const script = LuaScript.load(QUOTA_HIT);

  it('falls back to EVAL with the source, keys and arguments on NOSCRIPT', async () => {
    const { redis, evalFn, evalshaFn } = fakeRedis(async () => {
      throw new Error('NOSCRIPT No matching script. Please use EVAL.');
    });
    await expect(script.run(redis, ['k1', 'k2'], [1, 'a'])).resolves.toBe('from EVAL');
    expect(evalshaFn).toHaveBeenCalledWith(script.sha1, 2, 'k1', 'k2', 1, 'a');
    expect(evalFn).toHaveBeenCalledWith(script.source, 2, 'k1', 'k2', 1, 'a');
  });

  it('rethrows what EVAL fails with after NOSCRIPT', async () => {
    const { redis, evalFn } = fakeRedis(async () => {
      throw new Error('NOSCRIPT No matching script. Please use EVAL.');
    });
    const failure = new Error('Command timed out');
    evalFn.mockRejectedValueOnce(failure);
    await expect(script.run(redis, ['k'], [])).rejects.toBe(failure);
  });

  it.each([
    ['a connection error', new Error("Stream isn't writeable and enableOfflineQueue options is false")],
    ['a timeout', new Error('Command timed out')],
    ['an error that mentions NOSCRIPT later on', new Error('ERR something NOSCRIPT')],
    ['a value that is not an Error', 'NOSCRIPT as a bare string'],
  ])('rethrows %s as is, without trying EVAL', async (_what, failure: unknown) => {
    const { redis, evalFn } = fakeRedis(() => Promise.reject(failure));
    await expect(script.run(redis, ['k'], [])).rejects.toBe(failure);
    expect(evalFn).not.toHaveBeenCalled();
  });
});
