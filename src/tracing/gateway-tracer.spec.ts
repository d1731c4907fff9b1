import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { installInMemoryTracing } from '../../test/support/in-memory-tracing.js';
import { GatewayError } from '../http/gateway-error.js';
import { ATTR, inSpan, inSpanSync } from './gateway-tracer.js';
import { shutDownTracing } from './running-tracing.js';

const tracing = installInMemoryTracing();
afterAll(() => tracing.uninstall());
beforeEach(() => tracing.reset());

const byName = (name: string) => tracing.spans().find((span) => span.name === name)!;

describe('inSpan', () => {
  it('makes the span active for the work inside it, awaits included, and ends it when the work is done', async () => {
    const result = await inSpan('outer', { attributes: { [ATTR.clientId]: 'team-a', [ATTR.priority]: undefined } }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return inSpan('inner', { kind: SpanKind.CLIENT }, () => Promise.resolve(42));
    });
    expect(result).toBe(42);
    const outer = byName('outer');
    expect(byName('inner').parentSpanContext?.spanId).toBe(outer.spanContext().spanId);
    expect(byName('inner').kind).toBe(SpanKind.CLIENT);
    expect(outer.attributes).toEqual({ [ATTR.clientId]: 'team-a' });
    expect(outer.ended).toBe(true);
  });

  it('leaves a refusal answered on purpose (a 4xx, or an error said to be expected) unfailed, and names its class', async () => {
    await expect(inSpan('refused', {}, () => Promise.reject(new GatewayError(429, 'spent')))).rejects.toThrow('spent');
    class HandedBack extends Error {}
    await expect(inSpan('handed back', { expected: (e) => e instanceof HandedBack }, () => Promise.reject(new HandedBack()))).rejects.toThrow();
    expect(byName('refused').status.code).toBe(SpanStatusCode.UNSET);
    expect(byName('refused').attributes[ATTR.errorType]).toBe('GatewayError');
    expect(byName('handed back').status.code).toBe(SpanStatusCode.UNSET);
  });

  it('marks anything else failed with its class, never its message (messages may quote a caller)', () => {
    expect(() =>
      inSpanSync('broken', {}, () => {
        throw new TypeError('the body said sk-SENTINEL-not-for-spans');
      }),
    ).toThrow(TypeError);
    const broken = byName('broken');
    expect(broken.status).toEqual({ code: SpanStatusCode.ERROR, message: 'TypeError' });
    expect(JSON.stringify(broken.attributes)).not.toContain('SENTINEL');
    expect(broken.events).toEqual([]);
  });
});

describe('with tracing off', () => {
  it('runs the work with a span that records nothing, and makes none', async () => {
    await shutDownTracing();
    tracing.reset();
    const recording = await inSpan('untraced', { attributes: { [ATTR.clientId]: 'team-a' } }, (span) => Promise.resolve(span.isRecording()));
    expect(recording).toBe(false);
    expect(inSpanSync('untraced too', {}, (span) => span.spanContext().traceId)).toBe('0'.repeat(32));
    expect(tracing.spans()).toEqual([]);
  });
});
