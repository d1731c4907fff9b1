import { describe, expect, it } from '@jest/globals';
import { EnvReader, type Env } from '../config/env-reader.js';
import { readTracingSettings, type TracingSettings } from './tracing.settings.js';

function settings(env: Env): { settings: TracingSettings; problems: string[] } {
  const read = new EnvReader(env);
  const result = readTracingSettings(read);
  return { settings: result, problems: read.problems.map((p) => `${p.variable}: ${p.reason}`) };
}

const COLLECTOR = 'http://otel-collector.observability:4318';

describe('readTracingSettings', () => {
  it('is off without an endpoint, with the SDK defaults otherwise but for smaller export batches', () => {
    expect(settings({})).toEqual({
      problems: [],
      settings: {
        enabled: false,
        protocol: 'http/protobuf',
        serviceName: 'zim-room-gateway',
        sampler: 'parentbased_always_on',
        samplerRatio: 1,
        batch: { scheduledDelayMillis: 5000, exportTimeoutMillis: 30_000, maxQueueSize: 2048, maxExportBatchSize: 128 },
        diagnosticsLevel: 'warn',
      },
    });
  });

  it('is on with either endpoint, and off again with a blank one (as a ConfigMap leaves it) or OTEL_SDK_DISABLED', () => {
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: COLLECTOR }).settings.enabled).toBe(true);
    expect(settings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${COLLECTOR}/v1/traces` }).settings.enabled).toBe(true);
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' }).settings.enabled).toBe(false);
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: COLLECTOR, OTEL_SDK_DISABLED: 'true' }).settings.enabled).toBe(false);
  });

  it('takes the traces protocol before the one for every signal, and refuses gRPC, which is not installed', () => {
    expect(settings({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).settings.protocol).toBe('http/json');
    expect(settings({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }).settings.protocol).toBe(
      'http/protobuf',
    );
    expect(settings({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' }).problems).toEqual([
      'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: must be one of http/protobuf, http/json',
    ]);
  });

  it('reads the service name, the sampler and its ratio, the batch delays and the diagnostics level', () => {
    const { settings: read, problems } = settings({
      OTEL_SERVICE_NAME: 'gateway-eu',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_BSP_SCHEDULE_DELAY: '1000',
      OTEL_BSP_EXPORT_TIMEOUT: '10000',
      OTEL_BSP_MAX_QUEUE_SIZE: '4096',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1024',
      OTEL_LOG_LEVEL: 'DEBUG',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod,k8s.cluster.name=eu-1',
    });
    expect(problems).toEqual([]);
    expect(read).toMatchObject({
      serviceName: 'gateway-eu',
      sampler: 'parentbased_traceidratio',
      samplerRatio: 0.25,
      batch: { scheduledDelayMillis: 1000, exportTimeoutMillis: 10_000, maxQueueSize: 4096, maxExportBatchSize: 1024 },
      diagnosticsLevel: 'debug',
    });
  });

  it('names every value the SDK would drop with a warning, and never quotes it', () => {
    const { problems } = settings({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'otel-collector:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://collector/v1/traces',
      OTEL_TRACES_SAMPLER: 'sometimes',
      OTEL_TRACES_SAMPLER_ARG: '1.5',
      OTEL_BSP_MAX_QUEUE_SIZE: '100',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '200',
      OTEL_BSP_SCHEDULE_DELAY: '-1',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod,oops',
      OTEL_LOG_LEVEL: 'loud',
      OTEL_SDK_DISABLED: 'yes',
    });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
      'OTEL_BSP_SCHEDULE_DELAY',
      'OTEL_EXPORTER_OTLP_ENDPOINT',
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
      'OTEL_LOG_LEVEL',
      'OTEL_RESOURCE_ATTRIBUTES',
      'OTEL_SDK_DISABLED',
      'OTEL_TRACES_SAMPLER',
      'OTEL_TRACES_SAMPLER_ARG',
    ]);
    expect(problems.join('\n')).not.toMatch(/otel-collector|ftp:|sometimes|oops|loud/);
  });
});
