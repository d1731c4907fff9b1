import { afterAll, describe, expect, it } from '@jest/globals';
import { context, createTraceState, trace } from '@opentelemetry/api';
import { installInMemoryTracing } from '../../test/support/in-memory-tracing.js';
import { inSpan } from './gateway-tracer.js';
import { currentSubmittingTrace, linksToSubmission, type SubmittingTrace } from './submitting-trace.js';

const tracing = installInMemoryTracing();
afterAll(() => tracing.uninstall());

describe('the trace a queued job carries', () => {
  it('survives the queue as JSON and links back to the span it was submitted in, tracestate included', async () => {
    const submitted = await inSpan('submit', {}, () => {
      const active = trace.getActiveSpan()!;
      const withState = trace.setSpanContext(context.active(), { ...active.spanContext(), traceState: createTraceState('caller=abc') });
      return Promise.resolve(context.with(withState, () => currentSubmittingTrace()));
    });
    const carried = JSON.parse(JSON.stringify(submitted)) as SubmittingTrace;
    const submit = tracing.spans().find((span) => span.name === 'submit')!.spanContext();
    expect(carried).toEqual({ traceparent: `00-${submit.traceId}-${submit.spanId}-01`, tracestate: 'caller=abc' });

    const [link] = linksToSubmission(carried);
    expect(link!.context).toMatchObject({ traceId: submit.traceId, spanId: submit.spanId, traceFlags: 1, isRemote: true });
    expect(link!.context.traceState?.get('caller')).toBe('abc');
  });

  it('carries nothing outside a span, and links to nothing it cannot read', () => {
    expect(currentSubmittingTrace()).toBeUndefined();
    expect(linksToSubmission(undefined)).toEqual([]);
    expect(linksToSubmission({ traceparent: 'not-a-traceparent' })).toEqual([]);
    expect(linksToSubmission({ traceparent: `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01` })).toEqual([]);
  });
});
