import { isIPv4, isIPv6 } from 'node:net';
import type { EnvReader } from '../config/env-reader.js';
import { Secret } from '../config/secret.js';

export type RedisConnectionSettings =
  /** REDIS_URL: redis:// or rediss:// (TLS), may carry user:password and /db. */
  | { readonly kind: 'url'; readonly url: Secret }
  | {
      readonly kind: 'sentinel';
      /** REDIS_SENTINELS=host:port,host:port (IPv6 as [::1]:26379; the host is kept without brackets). */
      readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>;
      /** REDIS_SENTINEL_MASTER: the name the sentinels monitor the primary under. */
      readonly masterName: string;
      /** REDIS_USERNAME, for the primary. */
      readonly username?: string;
      /** REDIS_PASSWORD, for the primary. */
      readonly password?: Secret;
      /** REDIS_SENTINEL_PASSWORD, for the sentinels themselves. */
      readonly sentinelPassword?: Secret;
      /** REDIS_TLS=true|false. */
      readonly tls: boolean;
    }
  | {
      readonly kind: 'cluster';
      /** REDIS_CLUSTER_NODES=host:port,host:port: some of the cluster's nodes, to discover the rest from. */
      readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>;
      /** REDIS_USERNAME, for every node. */
      readonly username?: string;
      /** REDIS_PASSWORD, for every node. */
      readonly password?: Secret;
      /** REDIS_TLS=true|false. */
      readonly tls: boolean;
    };

export interface RedisSettings {
  readonly connection: RedisConnectionSettings;
  /** Prefix of every key; RedisKeys wraps each keyspace's own part in a {hash tag}. */
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/** The prefix of every key the gateway writes, unless REDIS_KEY_PREFIX says otherwise. */
export const DEFAULT_KEY_PREFIX = 'zim-room-gateway';
/** No braces: the limiters add their own {hash tag}, and a second one would move the key's slot. */
const KEY_PREFIX = /^[A-Za-z0-9._:-]{1,64}$/;
const MASTER_NAME = /^[A-Za-z0-9._:-]{1,128}$/;
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const DOTTED_NUMBERS = /^[\d.]+$/;
const PORT = /^\d{1,5}$/;
/** Empty, `/` or `/<db>`. */
const URL_PATH = /^(?:\/(?:\d{1,5})?)?$/;

/** RATE_LIMIT_ON_REDIS_DOWN: what every shared store does while Redis cannot be reached. */
export type RedisDownFallback = 'local' | 'reject';

/** The Redis-down policy of every shared store (outbound limiter, client quotas, idempotency). */
export interface RedisDownSettings {
  /** `local`: this replica's own share, in process; `reject`: 503. */
  readonly fallback: RedisDownFallback;
  /** Fleet size assumed when each replica falls back to its own share of a shared budget. */
  readonly assumedReplicas: number;
  /**
   * RATE_LIMIT_SLOW_REDIS_MS: past this typical round trip a replica takes Redis as down for the
   * vendor budget (the other stores keep using it); back under half of it, it returns.
   */
  readonly slowRoundTripMs: number;
}

/** RATE_LIMIT_SLOW_REDIS_MS when unset (README, "When Redis is slow", says why). */
export const DEFAULT_SLOW_ROUND_TRIP_MS = 75;

/**
 * RATE_LIMIT_ON_REDIS_DOWN and RATE_LIMIT_REPLICAS (their names predate the quotas and idempotency
 * they also govern), and RATE_LIMIT_SLOW_REDIS_MS.
 */
export function readRedisDownSettings(read: EnvReader): RedisDownSettings {
  return {
    fallback: read.oneOf('RATE_LIMIT_ON_REDIS_DOWN', ['local', 'reject'] as const, 'local'),
    assumedReplicas: read.int('RATE_LIMIT_REPLICAS', { default: 3, min: 1, max: 1000 }),
    slowRoundTripMs: read.int('RATE_LIMIT_SLOW_REDIS_MS', { default: DEFAULT_SLOW_ROUND_TRIP_MS, min: 5, max: 5000 }),
  };
}

/**
 * Reads where Redis is, or undefined when none of REDIS_URL, REDIS_SENTINELS and
 * REDIS_CLUSTER_NODES is set (the gateway then runs everything in process). The key prefix and timeouts are validated either way.
 * Problems name the variable and never quote a value: REDIS_URL may carry a password.
 */
export function readRedisSettings(read: EnvReader): RedisSettings | undefined {
  const keyPrefix = read.optional('REDIS_KEY_PREFIX') ?? DEFAULT_KEY_PREFIX;
  if (!KEY_PREFIX.test(keyPrefix)) {
    read.problem('REDIS_KEY_PREFIX', 'must be 1-64 of A-Z a-z 0-9 . _ : - (no braces)');
  }
  const commandTimeoutMs = read.int('REDIS_COMMAND_TIMEOUT_MS', { default: 250, min: 10, max: 10_000 });
  const connectTimeoutMs = read.int('REDIS_CONNECT_TIMEOUT_MS', { default: 1000, min: 50, max: 60_000 });
  const connection = readConnection(read);
  checkStandalone(read);
  return connection && { connection, keyPrefix, commandTimeoutMs, connectTimeoutMs };
}

/**
 * Without Redis every replica keeps the whole vendor budget to itself: several of them would
 * multiply it. In production that must be said out loud (RATE_LIMIT_STANDALONE=true: this is the
 * only replica); the local quick start and the tests run without NODE_ENV and need nothing.
 */
function checkStandalone(read: EnvReader): void {
  const standalone = read.bool('RATE_LIMIT_STANDALONE', false);
  const redisConfigured = CONNECTION_VARIABLES.some((name) => read.optional(name) !== undefined);
  if (redisConfigured && standalone) {
    read.problem('RATE_LIMIT_STANDALONE', `applies only when no Redis is configured (${CONNECTION_VARIABLES.join(', ')} unset)`);
  } else if (!redisConfigured && !standalone && read.optional('NODE_ENV') === 'production') {
    read.problem(
      'RATE_LIMIT_STANDALONE',
      'must be true to run without Redis with NODE_ENV=production: set REDIS_URL (or the Sentinel or ' +
        'Cluster variables) so that the replicas share the vendor budget, or RATE_LIMIT_STANDALONE=true if ' +
        'this is the only replica',
    );
  }
}

/** The three ways to reach Redis; exactly one may be set. */
const CONNECTION_VARIABLES = ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const;

function readConnection(read: EnvReader): RedisConnectionSettings | undefined {
  const set = CONNECTION_VARIABLES.filter((name) => read.optional(name) !== undefined);
  if (set.length > 1) {
    read.problem(set[0]!, `set exactly one of ${CONNECTION_VARIABLES.join(', ')} (${set.join(' and ')} are set)`);
    return undefined;
  }
  const url = read.optional('REDIS_URL');
  const sentinels = read.optional('REDIS_SENTINELS');
  const clusterNodes = read.optional('REDIS_CLUSTER_NODES');
  if (sentinels !== undefined) return readSentinelConnection(read, sentinels);
  if (clusterNodes !== undefined) return readClusterConnection(read, clusterNodes);

  // Neither sentinels nor a cluster: their variables are a mistake, most likely a half-made switch.
  const sentinelOnly = 'applies only with REDIS_SENTINELS';
  const withNodes = 'applies only with REDIS_SENTINELS or REDIS_CLUSTER_NODES';
  if (read.optional('REDIS_SENTINEL_MASTER') !== undefined) read.problem('REDIS_SENTINEL_MASTER', sentinelOnly);
  if (read.optional('REDIS_SENTINEL_PASSWORD') !== undefined) read.problem('REDIS_SENTINEL_PASSWORD', sentinelOnly);
  for (const name of ['REDIS_USERNAME', 'REDIS_PASSWORD']) {
    if (read.optional(name) !== undefined) {
      read.problem(name, url === undefined ? withNodes : `${withNodes}; put credentials in REDIS_URL`);
    }
  }
  if (read.optional('REDIS_TLS') !== undefined) {
    read.problem('REDIS_TLS', url === undefined ? withNodes : `${withNodes}; use rediss:// in REDIS_URL`);
  }

  if (url === undefined) return undefined;
  const problem = redisUrlProblem(url);
  if (problem !== undefined) {
    read.problem('REDIS_URL', problem);
    return undefined;
  }
  return { kind: 'url', url: new Secret(url) };
}

function readClusterConnection(read: EnvReader, text: string): RedisConnectionSettings {
  const nodes = parseHostPorts(read, 'REDIS_CLUSTER_NODES', text, '[::1]:6379');
  for (const name of ['REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_PASSWORD']) {
    if (read.optional(name) !== undefined) read.problem(name, 'applies only with REDIS_SENTINELS');
  }
  const password = read.optional('REDIS_PASSWORD');
  return {
    kind: 'cluster',
    nodes,
    username: read.optional('REDIS_USERNAME'),
    password: password === undefined ? undefined : new Secret(password),
    tls: read.bool('REDIS_TLS', false),
  };
}

function redisUrlProblem(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be a redis:// or rediss:// URL';
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return 'must be a redis:// or rediss:// URL';
  if (url.hostname === '' || !URL_PATH.test(url.pathname) || url.search !== '' || url.hash !== '') {
    return 'must be redis://[user:password@]host[:port][/db] or the same with rediss://, without a query or fragment';
  }
  return undefined;
}

function readSentinelConnection(read: EnvReader, text: string): RedisConnectionSettings | undefined {
  const sentinels = parseHostPorts(read, 'REDIS_SENTINELS', text, '[::1]:26379');
  const masterName = read.optional('REDIS_SENTINEL_MASTER');
  if (masterName === undefined) {
    read.problem('REDIS_SENTINEL_MASTER', 'is required with REDIS_SENTINELS');
  } else if (!MASTER_NAME.test(masterName)) {
    read.problem('REDIS_SENTINEL_MASTER', 'must be 1-128 of A-Z a-z 0-9 . _ : -');
  }
  const username = read.optional('REDIS_USERNAME');
  const password = read.optional('REDIS_PASSWORD');
  const sentinelPassword = read.optional('REDIS_SENTINEL_PASSWORD');
  const tls = read.bool('REDIS_TLS', false);
  if (masterName === undefined) return undefined;
  return {
    kind: 'sentinel',
    sentinels,
    masterName,
    username,
    password: password === undefined ? undefined : new Secret(password),
    sentinelPassword: sentinelPassword === undefined ? undefined : new Secret(sentinelPassword),
    tls,
  };
}

/** `host:port` entries separated by commas or newlines; problems point at the entry by position. */
function parseHostPorts(read: EnvReader, variable: string, text: string, ipv6Example: string): Array<{ host: string; port: number }> {
  const entries: Array<{ host: string; port: number }> = [];
  const firstEntryOf = new Map<string, number>();
  const items = text
    .split(/[,\n]/)
    .map((item) => item.trim())
    .filter((item) => item !== '');

  items.forEach((item, index) => {
    const position = index + 1;
    const entry = parseHostPort(item);
    if (entry === undefined) {
      read.problem(variable, `entry ${position} must be host:port (an IPv6 address in brackets, as ${ipv6Example}; port 1-65535)`);
      return;
    }
    const key = `${entry.host.toLowerCase()}|${entry.port}`;
    const first = firstEntryOf.get(key);
    if (first !== undefined) {
      read.problem(variable, `entry ${position} repeats entry ${first}`);
      return;
    }
    firstEntryOf.set(key, position);
    entries.push(entry);
  });

  if (items.length === 0) read.problem(variable, 'holds no host:port');
  return entries;
}

function parseHostPort(item: string): { host: string; port: number } | undefined {
  let host: string;
  let port: string;
  if (item.startsWith('[')) {
    const match = /^\[([^\]]*)\]:([^:]*)$/.exec(item);
    if (!match || !isIPv6(match[1]!)) return undefined;
    host = match[1]!;
    port = match[2]!;
  } else {
    const separator = item.lastIndexOf(':');
    if (separator < 0) return undefined;
    host = item.slice(0, separator);
    port = item.slice(separator + 1);
    const validHost = DOTTED_NUMBERS.test(host) ? isIPv4(host) : HOST_NAME.test(host);
    if (!validHost) return undefined;
  }
  if (!PORT.test(port)) return undefined;
  const value = Number(port);
  if (value < 1 || value > 65_535) return undefined;
  return { host, port: value };
}
