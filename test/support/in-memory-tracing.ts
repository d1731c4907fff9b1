/**
 * For the unit specs of src/tracing: the real SDK's tracer provider and async context, registered
 * globally for one spec file, keeping every ended span in memory. What the preload starts in a
 * gateway, minus the exporter over HTTP.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { suppressTracing } from '@opentelemetry/core';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { onTracingStarted, shutDownTracing } from '../../src/tracing/running-tracing.js';

export interface InMemoryTracing {
  /** Every span ended since the last reset, in the order they ended. */
  spans(): ReadableSpan[];
  reset(): void;
  /** Unregisters the provider and the context manager. */
  uninstall(): Promise<void>;
}

export function installInMemoryTracing(): InMemoryTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  // As the preload does: the gateway's spans are made only once the SDK runs.
  onTracingStarted({ shutdown: () => provider.shutdown(), suppress: suppressTracing });
  return {
    spans: () => exporter.getFinishedSpans(),
    reset: () => exporter.reset(),
    async uninstall() {
      await shutDownTracing();
      trace.disable();
      context.disable();
    },
  };
}
