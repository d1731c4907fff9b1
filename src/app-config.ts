import { readAuthSettings, type AuthSettings } from './auth/auth.settings.js';
import { ConfigError } from './config/config-error.js';
import { EnvReader, type Env } from './config/env-reader.js';
import { Secret } from './config/secret.js';
import { readHttpSettings, type HttpSettings } from './http/http.settings.js';
import { readIdempotencySettings, type IdempotencySettings } from './idempotency/idempotency.settings.js';
import { readLoggingSettings, type LoggingSettings } from './logging/logging.settings.js';
import {
  readClientQuotaSettings,
  readOutboundSettings,
  type ClientQuotaSettings,
  type OutboundSettings,
} from './rate-limit/rate-limit.settings.js';
import {
  readRedisDownSettings,
  readRedisSettings,
  type RedisDownSettings,
  type RedisSettings,
} from './redis/redis.settings.js';
import { readBatchSettings, type BatchSettings } from './rooms/batches/batches.settings.js';
import { readTracingSettings, type TracingSettings } from './tracing/tracing.settings.js';
import { bodyKeyCap, largestBatchBodyKeys, largestRoomBodyKeys } from './rooms/body-key-caps.js';
import { readZegoSettings, type ZegoSettings } from './zego/zego.settings.js';

/**
 * The whole configuration, one section per module: each module reads and validates its own
 * variables (its `*.settings.ts`), and providers declare the sections they read.
 */
export interface AppConfig {
  readonly http: HttpSettings;
  readonly logging: LoggingSettings;
  readonly zego: ZegoSettings;
  readonly auth: AuthSettings;
  readonly outbound: OutboundSettings;
  readonly clientQuota: ClientQuotaSettings;
  readonly idempotency: IdempotencySettings;
  readonly batches: BatchSettings;
  readonly redisDown: RedisDownSettings;
  /** OpenTelemetry traces: the preload starts the SDK from the same variables before this is read. */
  readonly tracing: TracingSettings;
  /** Absent when none of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES is set: all runs in process. */
  readonly redis?: RedisSettings;
}

/**
 * Parses and validates the environment once, at start-up. Throws a ConfigError naming every bad
 * variable; the values themselves are never part of the message.
 */
export function loadConfig(env: Env): AppConfig {
  const read = new EnvReader(env);
  const batches = readBatchSettings(read);
  const http = readHttpSettings(read);
  const logging = readLoggingSettings(read);
  const zego = readZegoSettings(read);
  const config: AppConfig = {
    http: {
      ...http,
      bodyLimitTotalKeys: bodyKeyCap(largestRoomBodyKeys(zego.maxRoomAttributes)),
      routeBodyLimits: [
        {
          method: 'POST',
          path: '/rooms/batches',
          bytes: batches.bodyLimitBytes,
          totalKeys: bodyKeyCap(largestBatchBodyKeys(batches.maxRooms, zego.maxRoomAttributes)),
        },
      ],
    },
    logging,
    zego,
    auth: readAuthSettings(read),
    outbound: readOutboundSettings(read),
    redisDown: readRedisDownSettings(read),
    clientQuota: readClientQuotaSettings(read),
    idempotency: readIdempotencySettings(read),
    batches,
    tracing: readTracingSettings(read),
    redis: readRedisSettings(read),
  };
  if (config.redis && config.redisDown.slowRoundTripMs >= config.redis.commandTimeoutMs) {
    // A round trip that long times out first: the slow mode would never be reached.
    read.problem('RATE_LIMIT_SLOW_REDIS_MS', 'must be below REDIS_COMMAND_TIMEOUT_MS');
  }
  if (read.problems.length > 0) throw new ConfigError(read.problems);
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value) && !(value instanceof Secret)) {
    Object.values(value).forEach(deepFreeze);
    Object.freeze(value);
  }
  return value;
}
