/**
 * Loaded before the application: `node --import ./dist/tracing/preload.js dist/main.js` (npm start,
 * the image's command, `npm run local`). Instrumentations must be in place before express, ioredis
 * and http are first imported, which the application's own modules would be too late for.
 *
 * Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
 * Off, this module reads a few variables and imports nothing of the SDK. A setting the gateway
 * refuses leaves tracing off here; the configuration check in main then stops the process with
 * its message, as for every other variable.
 */
import { EnvReader } from '../config/env-reader.js';
import { readTracingSettings } from './tracing.settings.js';

const read = new EnvReader(process.env);
const settings = readTracingSettings(read);
if (settings.enabled && read.problems.length === 0) {
  const { startTracing } = await import('./start-tracing.js');
  startTracing(settings);
}
