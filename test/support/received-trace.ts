/**
 * One trace as a collector received it, for assertions that read like the trace view of a
 * tracing UI: its spans by name, the server span, and who descends from whom.
 */
import type { ReceivedSpan } from './otlp-receiver.js';

export class ReceivedTrace {
  constructor(readonly spans: readonly ReceivedSpan[]) {}

  get traceId(): string {
    return this.spans[0]?.traceId ?? '';
  }

  has(name: string): boolean {
    return this.spans.some((span) => span.name === name);
  }

  /** The spans of that name, in the order they were received. */
  all(name: string): ReceivedSpan[] {
    return this.spans.filter((span) => span.name === name);
  }

  /** The one span of that name; fails naming what the trace holds otherwise. */
  one(name: string): ReceivedSpan {
    const found = this.all(name);
    if (found.length !== 1) throw new Error(`expected one span "${name}", found ${found.length} among: ${this.names().join(', ')}`);
    return found[0]!;
  }

  /** The spans an instrumentation made (`@opentelemetry/instrumentation-ioredis`, ...). */
  byScope(scope: string): ReceivedSpan[] {
    return this.spans.filter((span) => span.scope === scope);
  }

  names(): string[] {
    return this.spans.map((span) => span.name);
  }

  /** True when `ancestor` is `span`'s parent, or its parent's, and so on. */
  descendsFrom(span: ReceivedSpan, ancestor: ReceivedSpan): boolean {
    const byId = new Map(this.spans.map((s) => [s.spanId, s]));
    for (let parent = byId.get(span.parentSpanId); parent !== undefined; parent = byId.get(parent.parentSpanId)) {
      if (parent.spanId === ancestor.spanId) return true;
    }
    return false;
  }
}
