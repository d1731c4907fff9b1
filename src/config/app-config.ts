import { ZIM_LIMITS } from '../zego/zim-limits.js';
import { parseApiKeyEntries, type ApiKeyEntry } from './api-key-entries.js';
import { MAX_CLIENT_REQUESTS_PER_SECOND, parseClientQuotaOverrides } from './client-quotas.js';
import { ConfigError } from './config-error.js';
import { EnvReader, type Env } from './env-reader.js';
import { readRedisSettings, type RedisSettings } from './redis-settings.js';
import { Secret } from './secret.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Injection token for the typed, frozen configuration. */
export const APP_CONFIG = Symbol('APP_CONFIG');

export interface AppConfig {
  readonly http: {
    readonly port: number;
    /** Request bodies above this are answered 413 before they are parsed. */
    readonly bodyLimitBytes: number;
    /**
     * After SIGTERM: how long the gateway keeps accepting connections while readiness is already
     * 503 (load balancers take a moment to stop sending), before it closes the listener.
     */
    readonly shutdownGraceMs: number;
    /**
     * Node's server.headersTimeout: a client must finish sending the request headers within this
     * long of its first byte, or the connection gets 408 and is closed (slow-loris headers).
     */
    readonly headersTimeoutMs: number;
    /**
     * Node's server.requestTimeout: a client must finish sending the whole request (headers and
     * body) within this long, or it gets 408 and is closed (slow bodies). It covers receiving only:
     * once the body is in, the vendor call (ZEGO_CALL_DEADLINE_MS) is not cut by it.
     */
    readonly requestTimeoutMs: number;
  };
  readonly logging: {
    readonly level: LogLevel;
  };
  readonly zego: {
    readonly appId: number;
    readonly serverSecret: Secret;
    /** Where the secret was read from, when it came from a file (for rotation). */
    readonly serverSecretFile?: string;
    readonly apiBaseUrl: string;
    readonly timeoutMs: number;
    /** Total time one vendor call may take, retries and limiter waits included. */
    readonly callDeadlineMs: number;
    readonly maxAttempts: number;
    readonly defaultFromUserId?: string;
    readonly maxRoomAttributes: number;
  };
  readonly auth: {
    readonly apiKeys: readonly ApiKeyEntry[];
    readonly apiKeysFile?: string;
  };
  readonly outbound: {
    readonly qpsLimit: number;
    readonly windowMs: number;
    readonly maxWaitMs: number;
    /** Added to the window when spacing releases, to absorb jitter on the way to the vendor. */
    readonly safetyMarginMs: number;
    /** What the limiter does while Redis cannot be reached. */
    readonly onRedisDown: 'local' | 'reject';
    /** Fleet size assumed when each replica falls back to its own share of the budget. */
    readonly assumedReplicas: number;
  };
  readonly clientQuota: {
    /** Requests per second each client may make, unless overridden. */
    readonly perSecond: number;
    /** Per-client overrides, by client id (a null-prototype frozen record). */
    readonly overrides: Readonly<Record<string, number>>;
  };
  readonly idempotency: {
    /** How long the final answer of a request sent with an Idempotency-Key is kept. */
    readonly ttlSeconds: number;
  };
  /** Absent when REDIS_URL and REDIS_SENTINELS are both unset: everything then runs in process. */
  readonly redis?: RedisSettings;
}

const DEFAULT_API_BASE_URL = 'https://zim-api.zego.im';
const UINT32_MAX = 4_294_967_295;

/**
 * Parses and validates the environment once, at start-up. Throws a ConfigError naming every bad
 * variable; the values themselves are never part of the message.
 */
export function loadConfig(env: Env): AppConfig {
  const read = new EnvReader(env);

  const port = read.int('PORT', { default: 3000, min: 0, max: 65535 });
  const shutdownGraceMs = read.int('SHUTDOWN_GRACE_MS', { default: 5000, min: 0, max: 120_000 });
  const headersTimeoutMs = read.int('HTTP_HEADERS_TIMEOUT_MS', { default: 10_000, min: 1000, max: 600_000 });
  const requestTimeoutMs = read.int('HTTP_REQUEST_TIMEOUT_MS', { default: 30_000, min: 1000, max: 600_000 });
  // Node enforces the same order when both are given to http.createServer().
  if (requestTimeoutMs < headersTimeoutMs) {
    read.problem('HTTP_REQUEST_TIMEOUT_MS', 'must be at least HTTP_HEADERS_TIMEOUT_MS');
  }
  const logLevel = read.oneOf('LOG_LEVEL', LOG_LEVELS, 'info');
  const appId = read.int('ZEGO_APP_ID', { min: 1, max: UINT32_MAX });
  const secret = read.inlineOrFile('ZEGO_SERVER_SECRET', 'ZEGO_SERVER_SECRET_FILE');
  const apiBaseUrl = readBaseUrl(read);
  const timeoutMs = read.int('ZEGO_TIMEOUT_MS', { default: 5000, min: 100, max: 120_000 });
  const callDeadlineMs = read.int('ZEGO_CALL_DEADLINE_MS', {
    default: 10_000,
    min: 100,
    max: 300_000,
  });
  if (callDeadlineMs < timeoutMs) {
    read.problem('ZEGO_CALL_DEADLINE_MS', 'must be at least ZEGO_TIMEOUT_MS');
  }
  const maxAttempts = read.int('ZEGO_MAX_ATTEMPTS', { default: 3, min: 1, max: 10 });
  const defaultFromUserId = read.optional('ZEGO_DEFAULT_FROM_USER_ID');
  if (defaultFromUserId !== undefined && !ZIM_LIMITS.idPattern.test(defaultFromUserId)) {
    read.problem('ZEGO_DEFAULT_FROM_USER_ID', `must be ${ZIM_LIMITS.idAllowedDescription}`);
  }
  const maxRoomAttributes = read.int('ZEGO_MAX_ROOM_ATTRIBUTES', {
    default: ZIM_LIMITS.defaultMaxAttributes,
    min: 0,
    max: 1000,
  });

  const apiKeysSource = read.inlineOrFile('API_KEYS', 'API_KEYS_FILE');
  let apiKeys: ApiKeyEntry[] = [];
  if (apiKeysSource) {
    const variable = apiKeysSource.file ? 'API_KEYS_FILE' : 'API_KEYS';
    const parsed = parseApiKeyEntries(apiKeysSource.value, variable);
    apiKeys = parsed.entries;
    parsed.problems.forEach((p) => read.problem(p.variable, p.reason));
  }

  const qpsLimit = read.int('ZEGO_QPS_LIMIT', { default: 20, min: 1, max: 10_000 });
  const windowMs = read.int('ZEGO_QPS_WINDOW_MS', { default: 1000, min: 10, max: 60_000 });
  const maxWaitMs = read.int('RATE_LIMIT_MAX_WAIT_MS', { default: 2000, min: 0, max: 60_000 });
  const safetyMarginMs = read.int('RATE_LIMIT_SAFETY_MARGIN_MS', { default: 30, min: 0, max: 10_000 });

  const onRedisDown = read.oneOf('RATE_LIMIT_ON_REDIS_DOWN', ['local', 'reject'] as const, 'local');
  const assumedReplicas = read.int('RATE_LIMIT_REPLICAS', { default: 3, min: 1, max: 1000 });

  const perSecond = read.int('CLIENT_RATE_LIMIT', {
    default: 10,
    min: 1,
    max: MAX_CLIENT_REQUESTS_PER_SECOND,
  });
  const quotaOverrides = parseClientQuotaOverrides(
    read.optional('CLIENT_RATE_LIMITS') ?? '',
    'CLIENT_RATE_LIMITS',
  );
  quotaOverrides.problems.forEach((p) => read.problem(p.variable, p.reason));

  const idempotencyTtlSeconds = read.int('IDEMPOTENCY_TTL_S', { default: 86_400, min: 60, max: 2_592_000 });

  const redis = readRedisSettings(read);

  if (read.problems.length > 0) throw new ConfigError(read.problems);

  return deepFreeze({
    http: { port, bodyLimitBytes: 64 * 1024, shutdownGraceMs, headersTimeoutMs, requestTimeoutMs },
    logging: { level: logLevel },
    zego: {
      appId,
      serverSecret: new Secret(secret!.value),
      serverSecretFile: secret!.file,
      apiBaseUrl,
      timeoutMs,
      callDeadlineMs,
      maxAttempts,
      defaultFromUserId,
      maxRoomAttributes,
    },
    auth: { apiKeys, apiKeysFile: apiKeysSource!.file },
    outbound: { qpsLimit, windowMs, maxWaitMs, safetyMarginMs, onRedisDown, assumedReplicas },
    clientQuota: { perSecond, overrides: quotaOverrides.overrides },
    idempotency: { ttlSeconds: idempotencyTtlSeconds },
    redis,
  });
}

function readBaseUrl(read: EnvReader): string {
  const raw = read.optional('ZEGO_API_BASE_URL') ?? DEFAULT_API_BASE_URL;
  if (!isUrlWithProtocol(raw, ['http:', 'https:'])) {
    read.problem('ZEGO_API_BASE_URL', 'must be an http:// or https:// URL');
    return raw;
  }
  const url = new URL(raw);
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    read.problem('ZEGO_API_BASE_URL', 'must not carry a query, fragment or credentials');
  }
  return url.toString();
}

function isUrlWithProtocol(raw: string, protocols: string[]): boolean {
  try {
    return protocols.includes(new URL(raw).protocol);
  } catch {
    return false;
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value) && !(value instanceof Secret)) {
    Object.values(value).forEach(deepFreeze);
    Object.freeze(value);
  }
  return value;
}
