import type { EnvReader } from '../config/env-reader.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggingSettings {
  readonly level: LogLevel;
}

/** LOG_LEVEL. */
export function readLoggingSettings(read: EnvReader): LoggingSettings {
  return { level: read.oneOf('LOG_LEVEL', LOG_LEVELS, 'info') };
}
