import { writeSync } from 'node:fs';
import { inspect } from 'node:util';
import { type DiagLogger, DiagLogLevel } from '@opentelemetry/api';
import { LogSanitiser } from '../logging/log-sanitiser.js';
import type { DiagnosticsLevel } from './tracing.settings.js';

/** OTEL_LOG_LEVEL's names as the API's levels. */
export const DIAG_LEVELS: Readonly<Record<DiagnosticsLevel, DiagLogLevel>> = {
  none: DiagLogLevel.NONE,
  error: DiagLogLevel.ERROR,
  warn: DiagLogLevel.WARN,
  info: DiagLogLevel.INFO,
  debug: DiagLogLevel.DEBUG,
  verbose: DiagLogLevel.VERBOSE,
  all: DiagLogLevel.ALL,
};

/**
 * The SDK's own diagnostics (an export that failed, a dropped span) as the gateway's log lines:
 * one JSON object per line on stdout with `context: "OpenTelemetry"`, sanitised like the rest. The
 * SDK's default writes plain text through console, which a log pipeline reading JSON would garble.
 * Written before the application's logger exists, so it writes on its own (synchronously, as pino does).
 */
export function jsonDiagnosticsLog(sanitiser = new LogSanitiser()): DiagLogger {
  const write = (level: string) => (message: string, ...args: unknown[]): void => {
    const text = [message, ...args.map((arg) => (typeof arg === 'string' ? arg : inspect(arg, { depth: 3, breakLength: Infinity })))].join(' ');
    const line = { level, timestamp: Date.now(), pid: process.pid, context: 'OpenTelemetry', message: sanitiser.sanitise(text) };
    try {
      writeSync(1, `${JSON.stringify(line)}\n`);
    } catch {
      // stdout gone: nothing to report to
    }
  };
  return { error: write('error'), warn: write('warn'), info: write('info'), debug: write('debug'), verbose: write('trace') };
}
