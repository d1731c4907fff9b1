import { afterAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { RedisClient } from '../redis/redis-connection.js';
import { waitFor } from '../../test/support/async-probes.js';
import { startPrivateRedis, stopAllRedis } from '../../test/support/redis-server.js';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import { loadConfig, type AppConfig } from '../app-config.js';
import { currentRequestProgress, RequestProgress, runWithRequestProgress } from '../http/request-progress.js';
import { RequestValidationError } from '../http/request-validation.error.js';
import { connectRedis } from '../redis/redis-connection.js';
import { RedisDownPolicy } from '../redis/redis-down-policy.js';
import { RedisKeys } from '../redis/redis-keys.js';
import { DEFAULT_KEY_PREFIX, type RedisDownFallback } from '../redis/redis.settings.js';
import { SharedStoreUnavailable } from '../redis/shared-store-unavailable.js';
import { ZimCallError } from '../zego/zim-call-error.js';
import {
  IdempotencyKeyInProgress,
  IdempotencyKeyReused,
  ReplayedError,
} from './idempotency.errors.js';
import { IdempotencyService } from './idempotency.service.js';
import type { IdempotencyStore } from './idempotency-store.js';
import { createIdempotencyStore } from './idempotency.module.js';
import { InProcessIdempotencyStore } from './in-process-idempotency-store.js';

const ENV = {
  ZEGO_APP_ID: '1234567',
  ZEGO_SERVER_SECRET: 'SENTINEL-idem-secret-5d1c',
  API_KEYS: `svc:${'a'.repeat(64)}`,
};

interface Created {
  roomId: string;
  attributeSeq: number;
  zegoRequestId: string;
  recovered?: boolean;
}

/** The route every call here is made for: POST /rooms, whose success is a 201. */
const ROOMS_ROUTE = { route: 'POST /rooms', successStatus: 201 };

const silent = { log: () => undefined, error: () => undefined, warn: () => undefined };

function request(key: string | undefined, clientId = 'svc') {
  const headers: Record<string, string> = {};
  if (key !== undefined) headers['idempotency-key'] = key;
  const setHeader = jest.fn();
  return { headers, client: { clientId }, res: { setHeader } } as unknown as AuthenticatedRequest & {
    res: { setHeader: jest.Mock };
  };
}

const roomExists = () =>
  new ZimCallError('room-exists', 409, 'The room already exists', { zegoCode: 660300014, zegoRequestId: 'z-exists' });
const timeout = () => new ZimCallError('timeout', 504, 'The vendor did not answer within 50 ms');
const rateLimited = () =>
  new ZimCallError('rate-limited', 429, 'The vendor rate limit was reached', { zegoCode: 660300005, retryAfterSeconds: 1 });
const busy = () => new ZimCallError('vendor-busy', 503, 'The vendor is busy', { zegoCode: 1, retryAfterSeconds: 2 });
const unreachable = () => new ZimCallError('unreachable', 502, 'The vendor could not be reached (ECONNREFUSED)');

/**
 * The room service, reduced: perform() answers from a script of outcomes and, told that it resumes
 * an ambiguous attempt, reads "the room exists" as that attempt's creation, as RoomsService does.
 */
function vendor(...outcomes: Array<Created | Error>) {
  const perform = jest.fn(async (resumed: boolean): Promise<Created> => {
    const next = outcomes.shift();
    if (next === undefined) throw new Error('no more scripted outcomes');
    if (!(next instanceof Error)) return next;
    if (resumed && next instanceof ZimCallError && next.outcome === 'room-exists') {
      return { roomId: 'r1', attributeSeq: 0, zegoRequestId: next.details.zegoRequestId ?? '', recovered: true };
    }
    throw next;
  });
  return { perform };
}

/** The service as IdempotencyModule builds it without Redis, or with the store it is given. */
function serviceFor(config: AppConfig, store: IdempotencyStore = new InProcessIdempotencyStore()): IdempotencyService {
  return new IdempotencyService(config, new RedisKeys(DEFAULT_KEY_PREFIX), store);
}

const CREATED: Created = { roomId: 'r1', attributeSeq: 0, zegoRequestId: 'z-1' };
const BODY = { roomId: 'r1', roomName: 'n' };

describe('IdempotencyService with the in-process store', () => {
  let config: AppConfig;
  let service: IdempotencyService;
  beforeEach(() => {
    config = loadConfig(ENV);
    service = serviceFor(config);
  });

  it('claims for ZEGO_CALL_DEADLINE_MS plus a margin, and keeps answers for IDEMPOTENCY_TTL_S', () => {
    const custom = serviceFor(loadConfig({ ...ENV, ZEGO_CALL_DEADLINE_MS: '12000', IDEMPOTENCY_TTL_S: '120' }));
    expect(custom.pendingTtlMs).toBe(17_000);
    expect(custom.answerTtlMs).toBe(120_000);
  });

  it('just performs the call without the header', async () => {
    const { perform } = vendor(CREATED, CREATED);
    await expect(service.run({ request: request(undefined), body: BODY, perform, ...ROOMS_ROUTE })).resolves.toEqual(CREATED);
    await expect(service.run({ request: request(undefined), body: BODY, perform, ...ROOMS_ROUTE })).resolves.toEqual(CREATED);
    expect(perform).toHaveBeenCalledTimes(2);
  });

  it("names the store's calls as the request's stage, and not the work between them", async () => {
    const stages: string[] = [];
    const inner = new InProcessIdempotencyStore();
    const observed: IdempotencyStore = {
      claim: async (...args) => {
        stages.push(`claim: ${currentRequestProgress()?.stage}`);
        const claimed = await inner.claim(...args);
        if (claimed.kind !== 'started') return claimed;
        const { claim } = claimed;
        return {
          kind: 'started',
          claim: {
            finish: (end) => {
              stages.push(`finish: ${currentRequestProgress()?.stage}`);
              return claim.finish(end);
            },
          },
        };
      },
    };
    const progress = new RequestProgress(0, 10_000);
    const perform = jest.fn(async () => {
      stages.push(`perform: ${progress.stage}`);
      return CREATED;
    });
    await runWithRequestProgress(progress, () => serviceFor(config, observed).run({ request: request('k-stages'), body: BODY, perform, ...ROOMS_ROUTE }));
    expect(stages).toEqual(['claim: idempotency key', 'perform: handler', 'finish: idempotency key']);
    expect(progress.stage).toBe('handler');
  });

  it('refuses a malformed key with a 400 before calling anything', async () => {
    const { perform } = vendor(CREATED);
    await expect(service.run({ request: request('has space'), body: BODY, perform, ...ROOMS_ROUTE })).rejects.toBeInstanceOf(
      RequestValidationError,
    );
    expect(perform).not.toHaveBeenCalled();
  });

  it('replays a 201 for the same key and body, with Idempotent-Replayed, without calling again', async () => {
    const { perform } = vendor(CREATED);
    const first = request('k1');
    expect(await service.run({ request: first, body: BODY, perform, ...ROOMS_ROUTE })).toEqual(CREATED);
    expect(first.res.setHeader).not.toHaveBeenCalled();
    const again = request('k1');
    expect(await service.run({ request: again, body: { roomName: 'n', roomId: 'r1' }, perform, ...ROOMS_ROUTE })).toEqual(CREATED);
    expect(again.res.setHeader).toHaveBeenCalledWith('Idempotent-Replayed', 'true');
    expect(perform).toHaveBeenCalledTimes(1);
  });

  it('scopes keys to the client', async () => {
    const { perform } = vendor(CREATED, CREATED);
    await service.run({ request: request('k1', 'team-a'), body: BODY, perform, ...ROOMS_ROUTE });
    await service.run({ request: request('k1', 'team-b'), body: { roomId: 'other' }, perform, ...ROOMS_ROUTE });
    expect(perform).toHaveBeenCalledTimes(2);
  });

  it('scopes keys to the route: one key on two routes runs twice, each replaying its own answer', async () => {
    const { perform } = vendor(CREATED, CREATED);
    const batches = { route: 'POST /rooms/batches', successStatus: 202 };
    await service.run({ request: request('k1'), body: BODY, perform, ...ROOMS_ROUTE });
    // Another body under the same key is no reuse on another route.
    await service.run({ request: request('k1'), body: { roomId: 'other' }, perform, ...batches });
    expect(perform).toHaveBeenCalledTimes(2);
    await service.run({ request: request('k1'), body: { roomId: 'other' }, perform, ...batches });
    expect(perform).toHaveBeenCalledTimes(2);
  });

  it('answers 422 for the same key with another body', async () => {
    const { perform } = vendor(CREATED);
    await service.run({ request: request('k1'), body: BODY, perform, ...ROOMS_ROUTE });
    const reuse = service.run({ request: request('k1'), body: { ...BODY, roomName: 'other' }, perform, ...ROOMS_ROUTE });
    await expect(reuse).rejects.toBeInstanceOf(IdempotencyKeyReused);
    await expect(reuse).rejects.toMatchObject({ status: 422, publicMessage: expect.stringMatching(/^Idempotency-Key: /) });
  });

  it('answers 409 with Retry-After 1 while the first request with the key runs', async () => {
    let finish!: (value: Created) => void;
    const perform = jest.fn(() => new Promise<Created>((resolve) => (finish = resolve)));
    const first = service.run({ request: request('k1'), body: BODY, perform, ...ROOMS_ROUTE });
    const second = service.run({ request: request('k1'), body: BODY, perform, ...ROOMS_ROUTE });
    await expect(second).rejects.toBeInstanceOf(IdempotencyKeyInProgress);
    await expect(second).rejects.toMatchObject({ status: 409, details: { retryAfterSeconds: 1 } });
    finish(CREATED);
    await expect(first).resolves.toEqual(CREATED);
    expect(perform).toHaveBeenCalledTimes(1);
  });

  it("stores the vendor's definite 4xx and replays it with the same message and codes", async () => {
    const { perform } = vendor(roomExists());
    await expect(service.run({ request: request('k1'), body: BODY, perform, ...ROOMS_ROUTE })).rejects.toMatchObject({ status: 409 });
    const again = request('k1');
    const replay = service.run({ request: again, body: BODY, perform, ...ROOMS_ROUTE });
    await expect(replay).rejects.toBeInstanceOf(ReplayedError);
    await expect(replay).rejects.toMatchObject({
      status: 409,
      publicMessage: 'The room already exists',
      details: { zegoCode: 660300014, zegoRequestId: 'z-exists' },
    });
    expect(again.res.setHeader).toHaveBeenCalledWith('Idempotent-Replayed', 'true');
    expect(perform).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['429', rateLimited],
    ['503', busy],
    ['502 unreachable', unreachable],
    ['an unexpected error', () => new Error('boom')],
  ])('releases the key after %s: a retry calls the vendor again', async (_, failure) => {
    const { perform } = vendor(failure(), CREATED);
    await expect(service.run({ request: request('k1'), body: BODY, perform, ...ROOMS_ROUTE })).rejects.toBeInstanceOf(Error);
    // Released: even another body may use the key now.
    await expect(service.run({ request: request('k1'), body: BODY, perform, ...ROOMS_ROUTE })).resolves.toEqual(CREATED);
    expect(perform).toHaveBeenCalledTimes(2);
  });

  it('after a 504, answers a retry that finds the room with 201 recovered, and keeps that answer', async () => {
    const calls = vendor(timeout(), roomExists());
    await expect(service.run({ request: request('k1'), body: BODY, ...calls, ...ROOMS_ROUTE })).rejects.toMatchObject({ status: 504 });
    const recovered = await service.run({ request: request('k1'), body: BODY, ...calls, ...ROOMS_ROUTE });
    expect(recovered).toEqual({ roomId: 'r1', attributeSeq: 0, zegoRequestId: 'z-exists', recovered: true });
    const replayed = request('k1');
    expect(await service.run({ request: replayed, body: BODY, ...calls, ...ROOMS_ROUTE })).toEqual(recovered);
    expect(replayed.res.setHeader).toHaveBeenCalledWith('Idempotent-Replayed', 'true');
    expect(calls.perform).toHaveBeenCalledTimes(2);
  });

  it('after a 504, keeps the key ambiguous through transient failures and further 504s', async () => {
    const calls = vendor(timeout(), rateLimited(), timeout(), roomExists());
    await expect(service.run({ request: request('k1'), body: BODY, ...calls, ...ROOMS_ROUTE })).rejects.toMatchObject({ status: 504 });
    await expect(service.run({ request: request('k1'), body: BODY, ...calls, ...ROOMS_ROUTE })).rejects.toMatchObject({ status: 429 });
    await expect(service.run({ request: request('k1'), body: BODY, ...calls, ...ROOMS_ROUTE })).rejects.toMatchObject({ status: 504 });
    await expect(service.run({ request: request('k1'), body: BODY, ...calls, ...ROOMS_ROUTE })).resolves.toMatchObject({ recovered: true });
  });

  it('after a 504, stores a plain 201 when the retry creates the room', async () => {
    const calls = vendor(timeout(), CREATED);
    await expect(service.run({ request: request('k1'), body: BODY, ...calls, ...ROOMS_ROUTE })).rejects.toMatchObject({ status: 504 });
    expect(await service.run({ request: request('k1'), body: BODY, ...calls, ...ROOMS_ROUTE })).toEqual(CREATED);
    expect(await service.run({ request: request('k1'), body: BODY, ...calls, ...ROOMS_ROUTE })).toEqual(CREATED);
    expect(calls.perform).toHaveBeenCalledTimes(2);
  });

  it('does not turn a 409 into a recovery without an earlier 504', async () => {
    const calls = vendor(roomExists());
    await expect(service.run({ request: request('k1'), body: BODY, ...calls, ...ROOMS_ROUTE })).rejects.toMatchObject({ status: 409 });
  });

  it('can be given its store', async () => {
    const store = new InProcessIdempotencyStore();
    const claim = jest.spyOn(store, 'claim');
    const withStore = serviceFor(config, store);
    await withStore.run({ request: request('k1'), body: BODY, perform: vendor(CREATED).perform, ...ROOMS_ROUTE });
    expect(claim).toHaveBeenCalledTimes(1);
  });
});

describe('IdempotencyService while Redis is down', () => {
  const opened: RedisClient[] = [];
  afterAll(async () => {
    for (const redis of opened) redis.disconnect();
    await stopAllRedis();
  });

  async function withRedis(policy: RedisDownFallback) {
    const server = await startPrivateRedis();
    const config = loadConfig({ ...ENV, REDIS_URL: server.url, RATE_LIMIT_ON_REDIS_DOWN: policy });
    const redis = connectRedis(config.redis!, silent);
    opened.push(redis);
    await waitFor(() => redis.status === 'ready', { what: 'Redis ready' });
    const redisDown = new RedisDownPolicy(redis, config.redisDown, silent);
    return { server, redis, service: serviceFor(config, createIdempotencyStore(redis, redisDown)) };
  }

  it('keeps keys in Redis while it answers', async () => {
    const { redis, service } = await withRedis('local');
    const { perform } = vendor(CREATED);
    await service.run({ request: request('k1'), body: BODY, perform, ...ROOMS_ROUTE });
    expect(await redis.keys('zim-room-gateway:idem:{svc}:*')).toHaveLength(1);
  });

  it('with the local policy, stays idempotent within the process', async () => {
    const { server, redis, service } = await withRedis('local');
    await server.stop();
    await waitFor(() => redis.status !== 'ready', { what: 'the connection to drop' });
    const { perform } = vendor(CREATED);
    expect(await service.run({ request: request('k2'), body: BODY, perform, ...ROOMS_ROUTE })).toEqual(CREATED);
    expect(await service.run({ request: request('k2'), body: BODY, perform, ...ROOMS_ROUTE })).toEqual(CREATED);
    await expect(service.run({ request: request('k2'), body: { roomId: 'x' }, perform, ...ROOMS_ROUTE })).rejects.toBeInstanceOf(
      IdempotencyKeyReused,
    );
    expect(perform).toHaveBeenCalledTimes(1);
  }, 20_000);

  it('with the reject policy, answers 503 with Retry-After 1 for requests with a key only', async () => {
    const { server, redis, service } = await withRedis('reject');
    await server.stop();
    await waitFor(() => redis.status !== 'ready', { what: 'the connection to drop' });
    const { perform } = vendor(CREATED);
    const refused = service.run({ request: request('k3'), body: BODY, perform, ...ROOMS_ROUTE });
    await expect(refused).rejects.toBeInstanceOf(SharedStoreUnavailable);
    await expect(refused).rejects.toMatchObject({ status: 503, details: { retryAfterSeconds: 1 } });
    expect(perform).not.toHaveBeenCalled();
    await expect(service.run({ request: request(undefined), body: BODY, perform, ...ROOMS_ROUTE })).resolves.toEqual(CREATED);
  }, 20_000);
});
