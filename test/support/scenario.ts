/**
 * The setup the end-to-end specs share, as one call at the top of a spec file (in the manner of
 * @nestjs/terminus's `bootstrapTestingModule()`): `scenario()` registers jest's beforeAll and
 * afterAll itself and returns handles.
 *
 *   const s = scenario({ fakeZim: { appId: APP_ID, serverSecret: SECRET }, apiKeys: { 'svc-a': KEY } });
 *   const gw = s.gatewayBeforeAll({ LOG_LEVEL: 'debug' });
 *   it('...', async () => {
 *     const impatient = await s.startGateway({ ZEGO_TIMEOUT_MS: '500' });
 *     ...
 *   });
 *
 * beforeAll starts the fake ZIM vendor (and the Redis asked for); afterAll stops every gateway
 * the spec file started (also those a test started without the scenario), then the fake, then
 * every redis-server the file started: gateways first, so that none of them sees its vendor or
 * Redis vanish. Jest runs hooks in the order they are declared, so a spec's own afterAll declared
 * below `scenario()` runs once all of that is stopped.
 *
 * `withFakeZim()` is a further fake vendor for one describe (or the file), e.g. one that holds
 * another secret.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { FakeZimServer, type FakeZimOptions } from '../fake-zim/fake-zim-server.js';
import { gatewayEnv, type EnvLayer } from './gateway-env.js';
import { startGateway, stopAllGateways, type GatewayProcess } from './gateway-process.js';
import { startPrivateRedis, startTestRedis, stopAllRedis, type TestRedis } from './redis-server.js';

/** Deadline of the scenario's hooks: starting the fake, a Redis and a gateway on a busy machine. */
const START_TIMEOUT_MS = 30_000;

export interface ScenarioOptions {
  /** The fake vendor. Its appId and serverSecret are also every gateway's ZEGO_APP_ID and ZEGO_SERVER_SECRET. */
  fakeZim: FakeZimOptions;
  /** client id → API key: every gateway's API_KEYS (as digests); the keys are for the requests. */
  apiKeys: Record<string, string>;
  /** Added to every gateway's environment. */
  env?: EnvLayer;
  /**
   * A Redis for the file, as the handle's `redis`. 'private': a redis-server of its own, which
   * tests may stop, restart and pause; 'test': the server REDIS_URL names when set, else a private
   * one (see startTestRedis). The gateways get it only where a test passes `REDIS_URL: redis.url`.
   */
  redis?: 'private' | 'test';
  /** Node's own options for every gateway (`npmStartNodeOptions()`: as `npm start` runs it). Default none. */
  nodeOptions?: string[];
}

export interface Scenario {
  /** The fake vendor, listening from the scenario's beforeAll on. */
  readonly fake: FakeZimServer;
  /** The Redis of `options.redis`, usable from the scenario's beforeAll on. */
  readonly redis: TestRedis;
  readonly appId: number;
  readonly secret: string;
  /** client id → API key, as given. */
  readonly apiKeys: Readonly<Record<string, string>>;
  /** A gateway's environment: AppId, secret and URL of the fake, API_KEYS, `options.env`, then `extra`. */
  env(extra?: EnvLayer): Record<string, string>;
  /** Starts a gateway with `env(extra)`; stopped in the scenario's afterAll unless the test stops it first. */
  startGateway(extra?: EnvLayer): Promise<GatewayProcess>;
  /**
   * A gateway started with `env(extra)` in a beforeAll of the describe this is called in (or of
   * the file), for all of its tests. The handle stands for the process from then on; touched
   * before, it throws. `extra` may be a function, for values known only then (another fake's URL).
   */
  gatewayBeforeAll(extra?: EnvLayer | (() => EnvLayer | Promise<EnvLayer>)): GatewayProcess;
  /** Every gateway this scenario started, in start order (for the specs' own leak scans). */
  readonly gateways: readonly GatewayProcess[];
}

export function scenario(options: ScenarioOptions): Scenario {
  const fake = new FakeZimServer(options.fakeZim);
  const gateways: GatewayProcess[] = [];
  let redis: TestRedis | undefined;

  beforeAll(async () => {
    const startRedis = { private: startPrivateRedis, test: startTestRedis };
    [redis] = await Promise.all([options.redis && startRedis[options.redis](), fake.start()]);
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await stopAllGateways();
    await fake.stop();
    await stopAllRedis();
  });

  const env = (extra?: EnvLayer): Record<string, string> =>
    gatewayEnv(
      {
        appId: options.fakeZim.appId,
        secret: options.fakeZim.serverSecret,
        vendorUrl: fake.url,
        apiKeys: options.apiKeys,
      },
      options.env,
      extra,
    );

  const start = async (extra?: EnvLayer): Promise<GatewayProcess> => {
    const gateway = await startGateway(env(extra), { nodeOptions: options.nodeOptions });
    gateways.push(gateway);
    return gateway;
  };

  return {
    fake,
    redis: startedHandle(
      () => redis,
      options.redis ? 'the Redis is not started yet' : 'this scenario has no Redis: give it the `redis` option',
    ),
    appId: options.fakeZim.appId,
    secret: options.fakeZim.serverSecret,
    apiKeys: options.apiKeys,
    env,
    startGateway: start,
    gatewayBeforeAll(extra) {
      let gateway: GatewayProcess | undefined;
      beforeAll(async () => {
        gateway = await start(typeof extra === 'function' ? await extra() : extra);
      }, START_TIMEOUT_MS);
      return startedHandle(() => gateway, 'the gateway is not started yet');
    },
    gateways,
  };
}

/** A further fake vendor, started in a beforeAll and stopped in an afterAll of the enclosing describe. */
export function withFakeZim(options: FakeZimOptions): FakeZimServer {
  const fake = new FakeZimServer(options);
  beforeAll(() => fake.start(), START_TIMEOUT_MS);
  afterAll(() => fake.stop());
  return fake;
}

/**
 * Stands for what a hook starts (a gateway, a Redis), so specs can name it at the top of the file:
 * every property is read from the started object; before it exists, reading one throws.
 */
function startedHandle<T extends object>(current: () => T | undefined, notStarted: string): T {
  return new Proxy({} as T, {
    get(_target, property) {
      const started = current();
      if (started === undefined) throw new Error(`${notStarted} (use it in a test, or in a hook declared after the one that starts it)`);
      const value: unknown = Reflect.get(started, property, started);
      return typeof value === 'function' ? value.bind(started) : value;
    },
  });
}
