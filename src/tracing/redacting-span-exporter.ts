import type { Attributes } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { isSensitiveKey, LogSanitiser, REDACTED } from '../logging/log-sanitiser.js';

/**
 * The last step before spans leave the process: every attribute, event, link, status message and
 * resource attribute goes through the same redaction as the log lines (signed query values such as
 * `Signature=` and `SignatureNonce=`, bearer and basic credentials, URL passwords, `*_SECRET=`), and
 * a value under a sensitive key (`http.request.header.authorization`, `...signature`) is replaced
 * whole. The gateway's own spans never put such values in; this holds for what instrumentations
 * and future code add too.
 */
export class RedactingSpanExporter implements SpanExporter {
  private readonly resources = new WeakMap<Resource, Resource>();
  /** The log lines' patterns; no literal secret (none is known before the configuration is read). */
  private readonly sanitiser = new LogSanitiser();

  constructor(private readonly next: SpanExporter) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.next.export(
      spans.map((span) => this.redactSpan(span)),
      resultCallback,
    );
  }

  shutdown(): Promise<void> {
    return this.next.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.next.forceFlush?.() ?? Promise.resolve();
  }

  redactSpan(span: ReadableSpan): ReadableSpan {
    const { status } = span;
    return {
      name: this.sanitise(span.name),
      kind: span.kind,
      spanContext: () => span.spanContext(),
      parentSpanContext: span.parentSpanContext,
      startTime: span.startTime,
      endTime: span.endTime,
      duration: span.duration,
      ended: span.ended,
      status: status.message === undefined ? status : { ...status, message: this.sanitise(status.message) },
      attributes: this.redactAttributes(span.attributes),
      links: span.links.map((link) => (link.attributes ? { ...link, attributes: this.redactAttributes(link.attributes) } : link)),
      events: span.events.map((event) => ({
        ...event,
        name: this.sanitise(event.name),
        ...(event.attributes && { attributes: this.redactAttributes(event.attributes) }),
      })),
      resource: this.redactResource(span.resource),
      instrumentationScope: span.instrumentationScope,
      droppedAttributesCount: span.droppedAttributesCount,
      droppedEventsCount: span.droppedEventsCount,
      droppedLinksCount: span.droppedLinksCount,
    };
  }

  redactAttributes(attributes: Attributes): Attributes {
    const redacted: Attributes = {};
    for (const [key, value] of Object.entries(attributes)) {
      redacted[key] = sensitiveAttributeKey(key) && value !== undefined ? REDACTED : this.redactValue(value);
    }
    return redacted;
  }

  private redactValue(value: unknown): unknown {
    if (typeof value === 'string') return this.sanitise(value);
    if (Array.isArray(value)) return value.map((item: unknown) => (typeof item === 'string' ? this.sanitise(item) : item));
    return value;
  }

  /**
   * Most values are names, ids and addresses that no credential pattern can match: they are let
   * through on one cheap test, since an export of hundreds of spans runs on the event loop that
   * serves requests.
   */
  private sanitise(text: string): string {
    return MAY_HOLD_A_CREDENTIAL.test(text) ? this.sanitiser.sanitise(text) : text;
  }

  /** Every span of a process shares one resource: redacted once. */
  private redactResource(resource: Resource): Resource {
    let redacted = this.resources.get(resource);
    if (!redacted) {
      redacted = resourceFromAttributes(this.redactAttributes(resource.attributes), { schemaUrl: resource.schemaUrl });
      this.resources.set(resource, redacted);
    }
    return redacted;
  }
}

/**
 * What every credential pattern of the sanitiser needs:
 * `=` (`Signature=`, `password=`), `:` or `@` (URL passwords, `Authorization: ...`, JSON), or a
 * `Bearer` / `Basic` credential.
 */
const MAY_HOLD_A_CREDENTIAL = /[=:@]|bearer|basic/i;

/** `http.request.header.authorization`, `zim.signature`: the last part of the name decides. */
function sensitiveAttributeKey(key: string): boolean {
  return isSensitiveKey(key) || isSensitiveKey(key.slice(key.lastIndexOf('.') + 1));
}
