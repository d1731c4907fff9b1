import type { IncomingMessage } from 'node:http';
import { diag } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { startNodeSdk } from '@opentelemetry/sdk-node';
import { register as registerImportHooks } from 'import-in-the-middle/register-hooks.mjs';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';
import { DIAG_LEVELS, jsonDiagnosticsLog } from './diagnostics-log.js';
import { RedactingSpanExporter } from './redacting-span-exporter.js';
import { onTracingStarted } from './running-tracing.js';
import type { SamplerName, TracingSettings } from './tracing.settings.js';

/**
 * The packages the instrumentations patch. The application is ESM, so they are patched through
 * import-in-the-middle's loader hooks as they are imported (require-in-the-middle alone sees only
 * require()); only these are wrapped, the rest of the import graph loads untouched. The hooks run
 * in-thread (module.registerHooks): Node 26 deprecates the off-thread module.register() behind
 * `@opentelemetry/instrumentation/hook.mjs`.
 */
const INSTRUMENTED_MODULES = ['express', 'ioredis', 'http', 'https'];

/** Query parameters whose values never reach a span: the instrumentation's list plus the vendor's signed ones. */
const REDACTED_QUERY_PARAMETERS = [
  'sig',
  'Signature',
  'SignatureNonce',
  'AWSAccessKeyId',
  'X-Goog-Signature',
  'X-Amz-Signature',
  'X-Amz-Credential',
  'X-Amz-Security-Token',
];

/** Probes and scrapes come every few seconds from every kubelet and Prometheus: traces of them would drown the rest. */
const UNTRACED_PATHS = /^\/(?:health\/(?:live|ready)|metrics)(?:[?#]|$)/;

/**
 * Starts the OpenTelemetry SDK for traces only (no metrics, no logs: /metrics and stdout carry
 * those): the ESM loader hook, the HTTP, Express and ioredis instrumentations, and an OTLP
 * exporter over HTTP in the protocol asked for, behind the redaction and a batch processor.
 */
export function startTracing(settings: TracingSettings): void {
  registerImportHooks({ include: INSTRUMENTED_MODULES });
  const exporter: SpanExporter = settings.protocol === 'http/json' ? new OtlpJsonTraceExporter() : new OtlpProtobufTraceExporter();
  const sdk = startNodeSdk({
    // The SDK sets its console logger at start: silent here, ours right after.
    logLevel: 'none',
    baseResource: defaultResource().merge(resourceFromAttributes({ 'service.name': settings.serviceName })),
    sampler: sampler(settings.sampler, settings.samplerRatio),
    spanProcessors: [new BatchSpanProcessor({ exporter: new RedactingSpanExporter(exporter), ...settings.batch })],
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request: IncomingMessage) => UNTRACED_PATHS.test(request.url ?? ''),
        redactedQueryParams: REDACTED_QUERY_PARAMETERS,
        redactedQueryParamsServer: REDACTED_QUERY_PARAMETERS,
      }),
      new ExpressInstrumentation(),
      // The command's name only: arguments carry keys, fingerprints and stored answers.
      new IORedisInstrumentation({ dbStatementSerializer: (command) => command }),
    ],
  });
  diag.setLogger(jsonDiagnosticsLog(), { logLevel: DIAG_LEVELS[settings.diagnosticsLevel], suppressOverrideMessage: true });
  onTracingStarted({ shutdown: () => sdk.shutdown(), suppress: suppressTracing });
}

function sampler(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}
