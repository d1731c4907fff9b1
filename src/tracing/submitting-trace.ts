import { createTraceState, isSpanContextValid, type Link, trace, TraceFlags } from '@opentelemetry/api';

/**
 * The span a queued job was submitted in, as W3C trace context text: plain data that survives the
 * queue (JSON in Redis), so the replica that works the job, maybe much later, can link to it.
 */
export interface SubmittingTrace {
  traceparent: string;
  tracestate?: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The active span's context, or undefined outside a recorded span (tracing off: nothing to link to). */
export function currentSubmittingTrace(): SubmittingTrace | undefined {
  const context = trace.getActiveSpan()?.spanContext();
  if (context === undefined || !isSpanContextValid(context)) return undefined;
  const flags = (context.traceFlags & TraceFlags.SAMPLED) !== 0 ? '01' : '00';
  const tracestate = context.traceState?.serialize();
  return {
    traceparent: `00-${context.traceId}-${context.spanId}-${flags}`,
    ...(tracestate !== undefined && tracestate !== '' && { tracestate }),
  };
}

/** A link to the submitting span; none when the job carries none or a malformed one. */
export function linksToSubmission(submitted: SubmittingTrace | undefined): Link[] {
  const match = submitted === undefined ? null : TRACEPARENT.exec(submitted.traceparent);
  if (!match) return [];
  const [, traceId, spanId, flags] = match as unknown as [string, string, string, string];
  const context = { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true };
  if (!isSpanContextValid(context)) return [];
  return [{ context: submitted?.tracestate ? { ...context, traceState: createTraceState(submitted.tracestate) } : context }];
}
