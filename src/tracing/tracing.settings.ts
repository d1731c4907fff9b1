import type { EnvReader } from '../config/env-reader.js';

/** The OTLP encodings the gateway ships exporters for (gRPC is not installed). */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

/** OTEL_TRACES_SAMPLER's values, as the OpenTelemetry specification names them. */
export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/** OTEL_LOG_LEVEL's values (the SDK's own diagnostics), case-insensitive as the SDK reads them. */
export const DIAGNOSTICS_LEVELS = ['none', 'error', 'warn', 'info', 'debug', 'verbose', 'all'] as const;
export type DiagnosticsLevel = (typeof DIAGNOSTICS_LEVELS)[number];

/** The batch span processor's knobs (OTEL_BSP_*): the SDK's defaults, but for the batch size. */
export interface SpanBatchSettings {
  readonly scheduledDelayMillis: number;
  readonly exportTimeoutMillis: number;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
}

export interface TracingSettings {
  /** True when an OTLP endpoint is set and OTEL_SDK_DISABLED is not `true`. */
  readonly enabled: boolean;
  readonly protocol: OtlpProtocol;
  readonly serviceName: string;
  readonly sampler: SamplerName;
  /** OTEL_TRACES_SAMPLER_ARG: the ratio of the `*traceidratio` samplers. */
  readonly samplerRatio: number;
  readonly batch: SpanBatchSettings;
  readonly diagnosticsLevel: DiagnosticsLevel;
}

export const DEFAULT_SERVICE_NAME = 'zim-room-gateway';

/**
 * The standard OpenTelemetry variables the gateway supports, checked like every other setting: a
 * value the SDK would ignore with a warning stops the gateway at start-up instead. The exporter
 * reads the endpoint itself (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT
 * with /v1/traces appended), and the resource detectors read OTEL_RESOURCE_ATTRIBUTES.
 */
export function readTracingSettings(read: EnvReader): TracingSettings {
  const endpoint = readOtlpEndpoint(read, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const tracesEndpoint = readOtlpEndpoint(read, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const disabled = read.bool('OTEL_SDK_DISABLED', false);
  // The traces-only variable wins over the one for every signal, as in the SDK.
  const protocol =
    read.optional('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') === undefined
      ? read.oneOf('OTEL_EXPORTER_OTLP_PROTOCOL', OTLP_PROTOCOLS, 'http/protobuf')
      : read.oneOf('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', OTLP_PROTOCOLS, 'http/protobuf');
  const queue = read.int('OTEL_BSP_MAX_QUEUE_SIZE', { default: 2048, min: 1, max: 1_000_000 });
  // 128, not the SDK's 512: an export is redacted and encoded on the event loop that serves
  // requests, and a smaller batch keeps each of those pauses to a few milliseconds.
  const batchSize = read.int('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', { default: 128, min: 1, max: 1_000_000 });
  if (batchSize > queue) read.problem('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'must not exceed OTEL_BSP_MAX_QUEUE_SIZE');
  readResourceAttributes(read, 'OTEL_RESOURCE_ATTRIBUTES');
  return {
    enabled: (endpoint !== undefined || tracesEndpoint !== undefined) && !disabled,
    protocol,
    serviceName: read.optional('OTEL_SERVICE_NAME') ?? DEFAULT_SERVICE_NAME,
    sampler: read.oneOf('OTEL_TRACES_SAMPLER', SAMPLERS, 'parentbased_always_on'),
    samplerRatio: readRatio(read, 'OTEL_TRACES_SAMPLER_ARG'),
    batch: {
      scheduledDelayMillis: read.int('OTEL_BSP_SCHEDULE_DELAY', { default: 5000, min: 1, max: 3_600_000 }),
      exportTimeoutMillis: read.int('OTEL_BSP_EXPORT_TIMEOUT', { default: 30_000, min: 1, max: 3_600_000 }),
      maxQueueSize: queue,
      maxExportBatchSize: batchSize,
    },
    diagnosticsLevel: readDiagnosticsLevel(read, 'OTEL_LOG_LEVEL'),
  };
}

/** An http:// or https:// URL, or undefined when unset (blank counts as unset, as in the SDK). */
function readOtlpEndpoint(read: EnvReader, name: string): string | undefined {
  const raw = read.optional(name);
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    read.problem(name, 'must be an http:// or https:// URL');
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    read.problem(name, 'must be an http:// or https:// URL');
    return undefined;
  }
  return raw;
}

/** A ratio from 0 to 1; 1 when unset. */
function readRatio(read: EnvReader, name: string): number {
  const raw = read.optional(name);
  if (raw === undefined) return 1;
  const value = /^(?:0|1|0?\.\d+|1\.0*)$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= 0 && value <= 1)) {
    read.problem(name, 'must be a ratio from 0 to 1, e.g. 0.25');
    return 1;
  }
  return value;
}

/** `key=value` pairs separated by commas; the SDK parses them, this only refuses what it would drop. */
function readResourceAttributes(read: EnvReader, name: string): void {
  const raw = read.optional(name);
  if (raw === undefined) return;
  const malformed = raw.split(',').some((pair) => !/^\s*[^=\s][^=]*=/.test(pair));
  if (malformed) read.problem(name, 'must be key=value pairs separated by commas, e.g. deployment.environment.name=prod');
}

function readDiagnosticsLevel(read: EnvReader, name: string): DiagnosticsLevel {
  const raw = read.optional(name)?.toLowerCase();
  if (raw === undefined) return 'warn';
  if (!(DIAGNOSTICS_LEVELS as readonly string[]).includes(raw)) {
    read.problem(name, `must be one of ${DIAGNOSTICS_LEVELS.join(', ')}`);
    return 'warn';
  }
  return raw as DiagnosticsLevel;
}
