import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import type { Secret } from '../config/secret.js';
import type { LoggingSettings, LogLevel } from './logging.settings.js';
import { LogSanitiser, REDACTED } from './log-sanitiser.js';
import { activeTraceFields } from './log-trace-fields.js';
import { PinoLogger } from './pino-logger.js';

/**
 * Structured paths pino censors before writing (the sanitiser also censors sensitive keys at any
 * depth; these keep the guarantee for the usual places even if a caller bypasses it). Request
 * bodies are never logged: the request log copies only `roomId` out of them.
 */
export const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'request.headers.authorization',
  'config.headers.authorization',
  'config.headers.Authorization',
  'apiKey',
  '*.apiKey',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'serverSecret',
  '*.serverSecret',
  'Signature',
  '*.Signature',
  'SignatureNonce',
  '*.SignatureNonce',
  'body',
  'req.body',
  'request.body',
];

export interface PinoOptions {
  level: LogLevel;
  sanitiser: LogSanitiser;
  /** Where lines go; standard output (synchronous writes) by default. */
  destination?: DestinationStream;
  /** Tracing is on: every line written inside a span carries its `trace_id` and `span_id`. */
  traceIds?: boolean;
}

/**
 * One JSON object per line: `level` as a label, `timestamp` (epoch ms), `pid`, `context`, the
 * human text in `message`. Every string passing through is sanitised (message, fields, stacks).
 */
export function createPino({ level, sanitiser, destination, traceIds = false }: PinoOptions): Logger {
  const options: LoggerOptions = {
    level,
    messageKey: 'message',
    base: { pid: process.pid },
    // Only with tracing on: off, no line pays for looking up a span.
    ...(traceIds && { mixin: activeTraceFields }),
    timestamp: () => `,"timestamp":${Date.now()}`,
    formatters: {
      level: (label) => ({ level: label }),
      log: (object) => sanitiser.sanitiseValue(object) as Record<string, unknown>,
    },
    serializers: {
      err: (error: Error) => sanitiser.sanitiseValue(plainCopy(pino.stdSerializers.err(error))),
    },
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    hooks: {
      logMethod(args, method) {
        const clean = args.map((arg) => (typeof arg === 'string' ? sanitiser.sanitise(arg) : arg));
        return method.apply(this, clean as Parameters<typeof method>);
      },
    },
  };
  return pino(options, destination ?? pino.destination({ dest: 1, sync: true }));
}

/** pino's serialized errors are not plain objects: copy them (and their causes) so the sanitiser walks in. */
function plainCopy(serialized: object, depth = 0): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...serialized };
  const cause = copy.cause;
  if (typeof cause === 'object' && cause !== null && depth < 5) copy.cause = plainCopy(cause, depth + 1);
  return copy;
}

/** What the logger is made from: the level, and the ServerSecret the configuration read. */
export interface LoggerConfig {
  readonly logging: LoggingSettings;
  readonly zego: { readonly serverSecret: Secret };
  readonly tracing?: { readonly enabled: boolean };
}

const loggers = new WeakMap<LoggerConfig, PinoLogger>();

/**
 * The application's logger for this configuration: level from LOG_LEVEL, and the ServerSecret the
 * configuration read censored in every line. A secret rotated in later reaches the sanitiser from
 * ZegoSecret, the holder of the secret in effect (LogSecretsBinding in logging.module.ts).
 * The same configuration always gets the same instance, so Nest's logger (app.factory.ts) and the
 * request log (LoggingModule) write through one pino instance.
 */
export function createLogger(config: LoggerConfig, options: { destination?: DestinationStream } = {}): PinoLogger {
  const cached = options.destination === undefined ? loggers.get(config) : undefined;
  if (cached) return cached;
  const sanitiser = new LogSanitiser(() => [config.zego.serverSecret.reveal()]);
  const logger = new PinoLogger(
    createPino({ level: config.logging.level, sanitiser, destination: options.destination, traceIds: config.tracing?.enabled }),
    sanitiser,
  );
  if (options.destination === undefined) loggers.set(config, logger);
  return logger;
}
