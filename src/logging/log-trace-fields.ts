import { isSpanContextValid, trace } from '@opentelemetry/api';

export interface LogTraceFields {
  trace_id?: string;
  span_id?: string;
}

/**
 * The active span's ids for a log line (a pino mixin): a line written while a traced request is
 * served names its trace and the span it was written in, so a trace and its log lines find each
 * other. Nothing outside a span.
 */
export function activeTraceFields(): LogTraceFields {
  const context = trace.getActiveSpan()?.spanContext();
  // A new object each time: pino merges the line's own fields into it.
  if (context === undefined || !isSpanContextValid(context)) return {};
  return { trace_id: context.traceId, span_id: context.spanId };
}
