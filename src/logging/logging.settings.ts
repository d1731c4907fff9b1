import type { EnvReader } from '../config/env-reader.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const REFUSAL_LOGGING = ['sampled', 'all'] as const;

export interface LoggingSettings {
  readonly level: LogLevel;
  /**
   * LOG_REFUSALS: 'sampled' logs the first refusal of a kind (client, status, reason) per second
   * in full and the rest as one summary line; 'all' logs each one (for debugging).
   */
  readonly refusals: (typeof REFUSAL_LOGGING)[number];
}

/** LOG_LEVEL, LOG_REFUSALS. */
export function readLoggingSettings(read: EnvReader): LoggingSettings {
  return { level: read.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'), refusals: read.oneOf('LOG_REFUSALS', REFUSAL_LOGGING, 'sampled') };
}
