/**
 * The setup the fleet specs share, as one call at the top of a spec file (or of a describe), as
 * `scenario()` is for the end-to-end specs: real gateway replicas on a private Redis or a Redis
 * Cluster, the fake vendor in its own process, every client team below in API_KEYS, and runs of a
 * team load measured at the vendor's door.
 *
 *   const fleet = fleetScenario({ env: { CLIENT_WEIGHTS: 'heavy:3,light:1' } });
 *   it('...', async () => {
 *     const run = await fleet.run('batch floods beside web and ops', { teams: STEADY_BESIDE_A_FLOOD });
 *     expect(run.unexpectedAnswers).toEqual([]);
 *     expect(unmet([...run.capAtTheDoor, budgetUsed(run.figures)])).toEqual([]);
 *   });
 *
 * beforeAll starts Redis (or the Cluster) and the fake, the TCP proxies asked for, then the
 * replicas; it waits until every replica's limiter is shared and warms them up. afterAll stops the
 * replicas first (none sees its vendor or Redis vanish), then the fake, the proxies and Redis.
 * `stopReplicas()` and `startReplicas()` replace the replicas mid-file, as a rollout does, on the
 * same Redis and fake (what a fleet leaves in Redis when it goes is what the next one starts on).
 *
 * Each run captures the requests reaching the fake's port on loopback (loopback-capture.ts), so
 * its cap criteria count on the kernel's arrival times and say whose a crowded window is
 * (vendor-door.ts). Over HTTPS the capture counts the TLS records that carry the requests.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ZimCode } from '../fake-zim/fake-zim-server.js';
import { criterion, milliseconds, percent, type Criterion } from './criteria.js';
import {
  FLEET_APP_ID,
  limiterModeLines,
  startFakeZimProcess,
  startReplicas,
  waitForLimiterMode,
  warmUp,
  type FakeZimProcess,
  type VendorCall,
} from './fleet.js';
import type { EnvLayer } from './gateway-env.js';
import type { GatewayProcess } from './gateway-process.js';
import { startLoopbackCapture, stopAllLoopbackCaptures, type KernelArrival } from './loopback-capture.js';
import { metricSum, scrapeMetrics, type MetricSample } from './prometheus-text.js';
import { startRedisCluster, stopAllRedisClusters, type TestRedisCluster } from './redis-cluster.js';
import { startPrivateRedis, stopAllRedis, type TestRedis } from './redis-server.js';
import {
  closedLoop,
  formatTeamRunFigures,
  openLoop,
  runTeamLoad,
  saturatedPeriod,
  teamRunFigures,
  unexpectedAnswers,
  type Team,
  type TeamAnswer,
  type TeamLoadResult,
  type TeamRunFigures,
  type Traffic,
} from './team-load.js';
import { startTcpProxy, stopAllTcpProxies, type TcpProxyProcess } from './tcp-proxy-process.js';
import { createTestCertificate, type TestCertificate } from './test-certificate.js';
import { capAtTheDoor, doorFigures, formatDoorFigures, type DoorBudget, type DoorFigures } from './vendor-door.js';

// ------------------------------------------------------------------ what every fleet spec shares

/** The vendor's budget as the replicas run it (the gateway's defaults, set explicitly). */
export const BUDGET: DoorBudget = { limit: 20, windowMs: 1000, marginMs: 30 };
export const CALL_DEADLINE_MS = 10_000;
/** A saturated run's length: its saturated period holds about 200 rooms, and the suite stays affordable. */
export const RUN_MS = 12_000;
/** An upper bound only, for runs that end when their fault sequence is over. */
export const LONGEST_RUN_MS = 60_000;

const SECRET = 'SENTINEL-secret-fleet-0c41a9e27d5b83f6';

/** Every client team of the fleet specs (an idle one takes no share). client id → API key. */
export const FLEET_CLIENTS = {
  alpha: 'sk-SENTINEL-fleet-alpha-5e1b9c07d2f4a836',
  beta: 'sk-SENTINEL-fleet-beta-9a2c4e61b7d03f58',
  gamma: 'sk-SENTINEL-fleet-gamma-13f8d6a0c94e2b75',
  batch: 'sk-SENTINEL-fleet-batch-7c2e9a41d0b35f86',
  web: 'sk-SENTINEL-fleet-web-1f8b3d6e0a9c2475',
  ops: 'sk-SENTINEL-fleet-ops-5a0c7e2b9d41f368',
  heavy: 'sk-SENTINEL-fleet-heavy-9e4a1c7f3b0d5286',
  light: 'sk-SENTINEL-fleet-light-2d6f0b8a4c1e9357',
  nightly: 'sk-SENTINEL-fleet-nightly-6b1d9f3a7e0c4825',
  bulk: 'sk-SENTINEL-fleet-bulk-3c8e2a0f6d4b1979',
  reports: 'sk-SENTINEL-fleet-reports-8f2b6d0c4a9e1536',
} as const;
export type FleetClient = keyof typeof FLEET_CLIENTS;

export function team(name: FleetClient, traffic: Traffic, headers?: Record<string, string>): Team {
  return { name, key: FLEET_CLIENTS[name], traffic, ...(headers && { headers }) };
}

/** Sixty callers in three teams alike: three times the budget asked for, no team favoured. */
export const THREE_FLOODING_ALIKE: readonly Team[] = [team('alpha', closedLoop(20)), team('beta', closedLoop(20)), team('gamma', closedLoop(20))];

/** `batch` floods (40 callers) beside two steady teams, `web` at 4/s and `ops` at 2/s. */
export const STEADY_BESIDE_A_FLOOD: readonly Team[] = [team('batch', closedLoop(40)), team('web', openLoop(4)), team('ops', openLoop(2))];

// ------------------------------------------------------------------ criteria more than one spec checks

export function budgetUsed(figures: TeamRunFigures): Criterion {
  return criterion('at least 95% of the budget turned into rooms', figures.budgetShare >= 0.95, percent(figures.budgetShare));
}

/**
 * Rooms the vendor created in [fromMs, toMs) (wall clock, the fake's record) as a share of the
 * budget over that span: the budget used in one part of a run (after a recovery, a fleet's first
 * seconds), where the run's own figure averages over all of it.
 */
export function budgetShareBetween(calls: readonly VendorCall[], fromMs: number, toMs: number): number {
  const created = calls.filter((c) => c.code === ZimCode.success && c.at >= fromMs && c.at < toMs).length;
  return created / (((toMs - fromMs) / BUDGET.windowMs) * BUDGET.limit);
}

/**
 * The steady teams' criteria: nearly every request created, and none waiting in line the way the
 * flood does. Their p99 is read against the run's own queue (the slowest other team's p50, about
 * the longest wait a caller takes): a steady team's calls wait for a slot, never behind a flood's.
 * A ratio rather than a fixed bound, so that a machine busier than usual slows both alike.
 */
export function servedPromptly(figures: TeamRunFigures, ...clients: FleetClient[]): Criterion[] {
  const queued = Object.entries(figures.teams)
    .filter(([name]) => !clients.includes(name as FleetClient))
    .map(([, f]) => f.createdLatencyP50Ms);
  if (queued.length === 0) throw new Error('servedPromptly reads the steady teams against a flood: the run has none');
  const bound = Math.max(...queued) / QUEUE_TO_PROMPT;
  return clients.flatMap((client) => {
    const f = figures.teams[client]!;
    return [
      criterion(`${client}: at least 99% of its requests created`, f.createdShare >= 0.99, percent(f.createdShare)),
      criterion(
        `${client}: p99 latency of its 201s at most 1/${QUEUE_TO_PROMPT} of the flood's p50 (${milliseconds(bound)})`,
        f.createdLatencyP99Ms <= bound,
        milliseconds(f.createdLatencyP99Ms),
      ),
    ];
  });
}

/** How much quicker than the flood's typical wait a steady team's slowest 201s are at least. */
const QUEUE_TO_PROMPT = 4;

// ------------------------------------------------------------------ the builder

export interface FleetScenarioOptions {
  /** Default 3. */
  replicas?: number;
  /**
   * A private redis-server (default), one that keeps its data through a restart as operators run
   * it for queues (`durable`: AOF, noeviction), or a Redis Cluster reached through REDIS_CLUSTER_NODES.
   */
  redis?: 'private' | 'durable' | { cluster: { primaries: number; replicasPerPrimary: 0 | 1 } };
  /** Added to every replica's environment. */
  env?: EnvLayer;
  /** Replicas that reach Redis through a TCP proxy (`fleet.redisProxy`), so one can lose Redis alone. */
  redisProxyFor?: readonly number[];
  /** Every replica reaches the fake through a TCP proxy (`fleet.vendorProxy`), to be shaped like a wide-area path. */
  vendorProxy?: boolean;
  /** The fake serves HTTPS behind a self-signed certificate the replicas trust. */
  vendorTls?: boolean;
}

export interface RunOptions<T> {
  teams: readonly Team[];
  /** How long the teams send; with `during`, an upper bound. Default RUN_MS. */
  durationMs?: number;
  /** Started with the load, which stops once it settles (e.g. a sequence of faults); its result is the run's `during`. */
  during?: () => Promise<T>;
}

export interface FleetRun<T> {
  load: TeamLoadResult;
  /** Per team and for the whole run, from the fake's record (see team-load.ts). */
  figures: TeamRunFigures;
  /** Both clocks at the vendor's door (see vendor-door.ts). */
  door: DoorFigures;
  /** The fake's record of the run. */
  calls: VendorCall[];
  /** Every replica's metrics before and after the run. */
  metricsBefore: MetricSample[][];
  metricsAfter: MetricSample[][];
  during: T;
  /** Answers other than a 201 or a 429 with a whole-seconds Retry-After (none lost, none other). */
  unexpectedAnswers: TeamAnswer[];
  /** The cap at the vendor's door, on the kernel's arrival times, attributable. */
  capAtTheDoor: Criterion[];
}

export interface Fleet {
  readonly gateways: readonly GatewayProcess[];
  readonly fake: FakeZimProcess;
  /** The private Redis (not with a Cluster). */
  readonly redis: TestRedis;
  /** The Redis Cluster (only with `redis: { cluster }`). */
  readonly cluster: TestRedisCluster;
  /** Only with `redisProxyFor`. */
  readonly redisProxy: TcpProxyProcess;
  /** Only with `vendorProxy`. */
  readonly vendorProxy: TcpProxyProcess;
  /** One run of the teams, its figures printed. */
  run<T = undefined>(label: string, options: RunOptions<T>): Promise<FleetRun<T>>;
  /**
   * Stops every replica with SIGTERM, as a rollout does, and waits for each to exit by itself: its
   * drain (requests in flight finish, up to the call deadline and a second), then its leave from
   * the fleet. With `underLoad`, the teams send for `sendMs` first and the replicas get SIGTERM as
   * the teams stop sending, with their requests still in flight. The fleet has no replicas until
   * `startReplicas()`.
   */
  stopReplicas(options?: StopReplicasOptions): Promise<StoppedReplicas>;
  /**
   * A fresh set of replicas on the same Redis and fake, after `stopReplicas()`: as at the start,
   * every one shared and warmed up before this resolves; they are `gateways` from then on.
   */
  startReplicas(options?: ReplicaOptions): Promise<void>;
  /**
   * SIGKILLs replica `index`, as a node that dies does (no drain, no leave), and starts a fresh one
   * in its place (shared and warmed up), as Kubernetes does; it is `gateways[index]` from then on.
   */
  replaceReplica(index: number): Promise<GatewayProcess>;
}

/** How a set of replicas reaches Redis and what it is told, for `startReplicas()` (the scenario's own by default). */
export interface ReplicaOptions {
  /** Default: the scenario's `replicas`. */
  replicas?: number;
  /** Default: the scenario's `redisProxyFor` (needs the scenario to have a Redis proxy); `[]` for every replica direct. */
  redisProxyFor?: readonly number[];
  /** Added to every replica's environment, over the scenario's `env`. */
  env?: EnvLayer;
}

export interface StopReplicasOptions {
  underLoad?: { teams: readonly Team[]; sendMs: number };
}

export interface StoppedReplicas {
  /** Each replica's exit code (0: it exited by itself after its drain; null: it had to be killed). */
  exitCodes: Array<number | null>;
  /** How long the stop took, from SIGTERM to the last exit (ms). */
  stopMs: number;
  /** With `underLoad`: the teams' answers, those the stop cut off included. */
  load?: TeamLoadResult;
}

interface Started {
  gateways: GatewayProcess[];
  fake: FakeZimProcess;
  redis?: TestRedis;
  cluster?: TestRedisCluster;
  redisProxy?: TcpProxyProcess;
  vendorProxy?: TcpProxyProcess;
  certificate?: TestCertificate;
}

/** Starting Redis, the fake, proxies and up to five replicas, then warming them, on a busy machine. */
const START_TIMEOUT_MS = 120_000;
/** A replica's own drain after SIGTERM lasts up to the call deadline and a second; beyond this it is killed. */
const GRACEFUL_STOP_TIMEOUT_MS = CALL_DEADLINE_MS + 6_000;

export function fleetScenario(options: FleetScenarioOptions = {}): Fleet {
  let fleet: Started | undefined;
  let runs = 0;
  let launches = 0;

  /**
   * Starts a set of replicas on the fleet's Redis and fake; they are the fleet's gateways from the
   * moment they run (so afterAll stops them whatever follows). Resolves once every one is shared
   * and warmed up.
   */
  const launch = async (started: Started, replicaOptions: ReplicaOptions = {}, adding = false): Promise<void> => {
    const { fake, redis, cluster, redisProxy, vendorProxy, certificate } = started;
    const redisProxyFor = replicaOptions.redisProxyFor ?? options.redisProxyFor ?? [];
    if (redisProxyFor.length > 0 && !redisProxy) throw new Error('this fleet has no Redis proxy: give the scenario the `redisProxyFor` option');
    const gateways = await startReplicas({
      replicas: replicaOptions.replicas ?? options.replicas ?? 3,
      secret: SECRET,
      clients: FLEET_CLIENTS,
      fakeUrl: vendorProxy ? vendorProxy.url(certificate ? 'https' : 'http') : fake.url,
      env: {
        ...(cluster ? { REDIS_CLUSTER_NODES: cluster.seeds } : { REDIS_URL: redis!.url }),
        ZEGO_QPS_LIMIT: String(BUDGET.limit),
        ZEGO_QPS_WINDOW_MS: String(BUDGET.windowMs),
        RATE_LIMIT_SAFETY_MARGIN_MS: String(BUDGET.marginMs),
        ZEGO_CALL_DEADLINE_MS: String(CALL_DEADLINE_MS),
        // Client quotas are not under test here (see client-quota.e2e-spec.ts): the vendor budget is.
        CLIENT_RATE_LIMIT: '1000',
        ...(certificate && { NODE_EXTRA_CA_CERTS: certificate.certPath }),
        ...definedOnly(options.env),
        ...definedOnly(replicaOptions.env),
      },
      envFor: (index): Record<string, string> =>
        redisProxy && redisProxyFor.includes(index) ? { REDIS_URL: redisProxy.url('redis') } : {},
    });
    started.gateways = adding ? [...started.gateways, ...gateways] : gateways;
    await Promise.all(gateways.map((g) => waitForLimiterMode(g, 'shared')));
    // Room ids never repeat against one fake: each set of replicas warms up on its own.
    await warmUp(gateways, FLEET_CLIENTS.alpha, `warm${launches++ || ''}`);
  };

  beforeAll(async () => {
    const certificate = options.vendorTls ? await createTestCertificate() : undefined;
    const [store, fake] = await Promise.all([
      typeof options.redis === 'object' ? startRedisCluster(options.redis.cluster) : startPrivateRedis({ durable: options.redis === 'durable' }),
      startFakeZimProcess(FLEET_APP_ID, SECRET, certificate ? { tls: { certFile: certificate.certPath, keyFile: certificate.keyPath } } : {}),
    ]);
    const [redis, cluster] = 'seeds' in store ? [undefined, store] : [store, undefined];
    const redisProxy = options.redisProxyFor && redis ? await startTcpProxy({ target: `127.0.0.1:${redis.port}` }) : undefined;
    const { hostname, port } = new URL(fake.url);
    const vendorProxy = options.vendorProxy ? await startTcpProxy({ target: { host: hostname, port: Number(port) } }) : undefined;
    fleet = { gateways: [], fake, redis, cluster, redisProxy, vendorProxy, certificate };
    await launch(fleet);
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await stopAllLoopbackCaptures();
    await Promise.all(fleet?.gateways.map((g) => g.stop()) ?? []);
    await fleet?.fake.process.stop();
    await stopAllTcpProxies();
    await stopAllRedisClusters();
    await stopAllRedis();
    await fleet?.certificate?.remove();
  });

  const started = (): Started => {
    if (!fleet) throw new Error('the fleet is not started yet (use it in a test, or in a hook declared after fleetScenario())');
    return fleet;
  };
  const part = <K extends keyof Started>(name: K, option: string): NonNullable<Started[K]> => {
    const value = started()[name];
    if (value === undefined || value === null) throw new Error(`this fleet has no ${name}: give it the \`${option}\` option`);
    return value;
  };

  const run = async <T>(label: string, { teams, durationMs = RUN_MS, during }: RunOptions<T>): Promise<FleetRun<T>> => {
    const { gateways, fake } = started();
    const before = (await fake.calls()).length;
    const metricsBefore = await Promise.all(gateways.map((g) => scrapeMetrics(g.url)));
    const marks = gateways.map((g) => g.logMark());
    // With a path between, its entrance is captured too: when the calls left the gateways. Over
    // HTTPS both count the TLS records that carry the requests.
    const tls = fake.url.startsWith('https:');
    const vendorProxy = started().vendorProxy;
    const [capture, departureCapture] = await Promise.all([
      startLoopbackCapture({ port: Number(new URL(fake.url).port), tls }),
      vendorProxy ? startLoopbackCapture({ port: vendorProxy.port, tls }) : undefined,
    ]);
    let load: TeamLoadResult;
    let outcome: T;
    let kernel: KernelArrival[] | undefined;
    let departures: KernelArrival[] | undefined;
    try {
      const sequence = during?.();
      load = await runTeamLoad({
        gateways,
        teams,
        durationMs,
        until: sequence,
        requestTimeoutMs: CALL_DEADLINE_MS + 5_000,
        runId: `r${++runs}`,
      });
      outcome = (await sequence) as T;
    } finally {
      [kernel, departures] = await Promise.all([capture?.stop(), departureCapture?.stop()]);
    }
    const calls = (await fake.calls()).slice(before);
    const { stalls } = await fake.stalls();
    // The replicas now: one replaced during the run is read in its successor's place.
    const metricsAfter = await Promise.all(started().gateways.map((g) => scrapeMetrics(g.url)));
    const figures = teamRunFigures(calls, load, { qpsLimit: BUDGET.limit, windowMs: BUDGET.windowMs, ...saturatedPeriod(load) });
    const door = doorFigures(
      { calls, kernel, departures, stalls: stalls.filter((s) => s.endedAt >= load.startedAt), startedAt: load.startedAt },
      BUDGET,
    );
    process.stdout.write(
      `\n${label}:\n${formatTeamRunFigures(figures)}\n${formatDoorFigures(door, BUDGET)}\n` +
        `${formatLateWires(metricsBefore, metricsAfter)}\n${formatModeChanges(gateways, marks, load.startedAt)}`,
    );
    return {
      load,
      figures,
      door,
      calls,
      metricsBefore,
      metricsAfter,
      during: outcome,
      unexpectedAnswers: unexpectedAnswers(load.answers),
      capAtTheDoor: capAtTheDoor(door, BUDGET),
    };
  };

  const stopReplicas = async ({ underLoad }: StopReplicasOptions = {}): Promise<StoppedReplicas> => {
    const current = started();
    const gateways = current.gateways;
    if (gateways.length === 0) throw new Error('this fleet has no replicas running: startReplicas() first');
    const loading = underLoad
      ? runTeamLoad({
          gateways,
          teams: underLoad.teams,
          durationMs: underLoad.sendMs,
          requestTimeoutMs: CALL_DEADLINE_MS + 5_000,
          runId: `r${++runs}`,
        })
      : undefined;
    if (underLoad) await sleep(underLoad.sendMs);
    const stoppingAt = performance.now();
    const exitCodes = await Promise.all(gateways.map((g) => g.stop(GRACEFUL_STOP_TIMEOUT_MS)));
    const stopMs = performance.now() - stoppingAt;
    current.gateways = [];
    return { exitCodes, stopMs, ...(loading && { load: await loading }) };
  };

  const replaceReplica = async (index: number): Promise<GatewayProcess> => {
    const current = started();
    const gateway = current.gateways[index];
    if (!gateway?.isRunning()) throw new Error(`replica ${index} is not running`);
    process.kill(gateway.pid, 'SIGKILL');
    await gateway.exited;
    const others = current.gateways;
    await launch(current, { replicas: 1 }, true);
    const fresh = current.gateways.at(-1)!;
    current.gateways = others.map((g, i) => (i === index ? fresh : g));
    return fresh;
  };

  const startAgain = async (replicaOptions: ReplicaOptions = {}): Promise<void> => {
    const current = started();
    if (current.gateways.some((g) => g.isRunning())) throw new Error('stopReplicas() first: this fleet still has replicas running');
    await launch(current, replicaOptions);
  };

  return {
    get gateways() {
      return started().gateways;
    },
    get fake() {
      return started().fake;
    },
    get redis() {
      return part('redis', "redis: 'private'");
    },
    get cluster() {
      return part('cluster', 'redis: { cluster }');
    },
    get redisProxy() {
      return part('redisProxy', 'redisProxyFor');
    },
    get vendorProxy() {
      return part('vendorProxy', 'vendorProxy');
    },
    run,
    stopReplicas,
    startReplicas: startAgain,
    replaceReplica,
  };
}

/** The histogram bucket at half the safety margin: a call on the wire later than that after its slot spent the margin on our side. */
const LATE_WIRE_BUCKET = String(BUDGET.marginMs / 2 / 1000);

/**
 * Calls handed to the network more than half the margin after their slot, per replica: a crowded
 * window at the door with late wires beside it was the gateways' own lateness (a process off the
 * CPU between its slot and its write), one without them the scheduler's.
 */
function formatLateWires(before: readonly MetricSample[][], after: readonly MetricSample[][]): string {
  const name = 'zim_gateway_vendor_slot_to_wire_seconds';
  const counts = after.map((samples, i) => {
    const late = (s: readonly MetricSample[]): number => metricSum(s, `${name}_count`) - metricSum(s, `${name}_bucket`, { le: LATE_WIRE_BUCKET });
    return late(samples) - late(before[i] ?? []);
  });
  return `calls on the wire over ${BUDGET.marginMs / 2} ms after their slot, per replica: [${counts.join(',')}]`;
}

/** Each replica's changes of limiter mode during a run, at seconds from its start: what a crowded window or a dip is read against. */
function formatModeChanges(gateways: readonly GatewayProcess[], marks: readonly number[], startedAt: number): string {
  return gateways
    .flatMap((g, i) =>
      limiterModeLines(g, marks[i]).map((line) => {
        const at = line.timestamp === undefined ? '?' : ((line.timestamp - startedAt) / 1000).toFixed(2);
        return `replica ${i} at ${at} s: ${line.message}\n`;
      }),
    )
    .join('');
}

function definedOnly(layer: EnvLayer | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(layer ?? {}).filter((entry): entry is [string, string] => entry[1] !== undefined));
}
