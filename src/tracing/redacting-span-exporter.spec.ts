import { afterAll, describe, expect, it } from '@jest/globals';
import { SpanKind } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { RedactingSpanExporter } from './redacting-span-exporter.js';

const SIGNATURE = '7d1f0c4e9a2b8365d0e1f2a3b4c5d6e7';
const NONCE = 'c0ffee12deadbeef';
const KEY = 'sk-SENTINEL-span-key-5b3e';
const SIGNED_URL = `https://zim-api.zego.im/?Action=CreateRoom&AppId=1&SignatureNonce=${NONCE}&Timestamp=1&SignatureVersion=2.0&Signature=${SIGNATURE}`;

/** The SDK's provider with the redaction in front of a memory exporter, as the preload wires it (batching aside). */
const memory = new InMemorySpanExporter();
const provider = new TracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'gateway', 'process.command_args': ['node', `--api-key=${KEY}`], 'team.token': KEY }),
  spanProcessors: [new SimpleSpanProcessor({ exporter: new RedactingSpanExporter(memory) })],
});
const tracer = provider.getTracer('spec');

afterAll(() => provider.shutdown());

describe('RedactingSpanExporter', () => {
  it('redacts signed query values, credentials and sensitive keys from attributes, events, links, status and resource', () => {
    const linked = tracer.startSpan('linked');
    linked.end();
    const span = tracer.startSpan(`GET ${SIGNED_URL}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        'url.full': SIGNED_URL,
        'url.query': `Signature=${SIGNATURE}&SignatureNonce=${NONCE}`,
        'http.request.header.authorization': [`Bearer ${KEY}`],
        'zim.signature': SIGNATURE,
        'db.connection_string': 'redis://gateway:hunter22@redis:6379',
        'server.address': 'zim-api.zego.im',
        'zim.attempt': 2,
      },
      links: [{ context: linked.spanContext(), attributes: { note: `Authorization: Bearer ${KEY}` } }],
    });
    span.addEvent('exception', { 'exception.message': `request to ${SIGNED_URL} failed` });
    span.setStatus({ code: 2, message: `failed: Authorization: Bearer ${KEY}` });
    span.end();

    const exported = memory.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT)!;
    const everything = JSON.stringify({
      name: exported.name,
      attributes: exported.attributes,
      events: exported.events,
      links: exported.links.map((l) => l.attributes),
      status: exported.status,
      resource: exported.resource.attributes,
    });
    for (const secret of [SIGNATURE, NONCE, KEY, 'hunter22']) expect(everything).not.toContain(secret);
    expect(exported.attributes).toMatchObject({
      'url.full': expect.stringContaining('Action=CreateRoom&AppId=1&SignatureNonce=[redacted]&Timestamp=1&SignatureVersion=2.0&Signature=[redacted]'),
      'http.request.header.authorization': '[redacted]',
      'zim.signature': '[redacted]',
      'db.connection_string': 'redis://gateway:***@redis:6379',
      'server.address': 'zim-api.zego.im',
      'zim.attempt': 2,
    });
    expect(exported.resource.attributes['service.name']).toBe('gateway');
    // The span's identity and timing are the span's own.
    expect(exported.spanContext().spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(exported.links[0]!.context.spanId).toBe(linked.spanContext().spanId);
  });
});
