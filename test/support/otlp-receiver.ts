/**
 * A stand-in for an OpenTelemetry collector's OTLP/HTTP receiver: `POST /v1/traces` in both
 * encodings a gateway may send (`application/x-protobuf` and `application/json`, gzipped or not),
 * answered as a collector answers a full success. It keeps every payload as it came (for the
 * secret scans) and reads the spans out of them on demand, in one shape whatever the encoding.
 *
 *   const collector = new OtlpReceiver();
 *   await collector.start();
 *   // gateway env: OTEL_EXPORTER_OTLP_ENDPOINT: collector.url
 *   const [span] = await collector.waitForSpans((s) => s.name === 'gateway budget wait');
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { decodeProtobufTraceRequest } from './otlp-trace-proto.js';
import { ReceivedTrace } from './received-trace.js';
import { recordEmission } from './secret-scan.js';

export type AttributeValue = string | number | boolean | AttributeValue[] | undefined;

/** OTLP's span kinds. */
export const SpanKind = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: number;
  attributes: Record<string, AttributeValue>;
  events: Array<{ name: string; attributes: Record<string, AttributeValue> }>;
  links: Array<{ traceId: string; spanId: string; traceState: string; attributes: Record<string, AttributeValue> }>;
  /** 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  /** The resource of the process that sent it. */
  resource: Record<string, AttributeValue>;
  /** The instrumentation scope's name (`zim-room-gateway`, `@opentelemetry/instrumentation-http`, ...). */
  scope: string;
  /** Duration in milliseconds. */
  durationMs: number;
}

export interface ReceivedExport {
  encoding: 'protobuf' | 'json';
  headers: IncomingHttpHeaders;
  /** The body as it came off the wire, unzipped. */
  body: Buffer;
}

const TRACES_PATH = '/v1/traces';

export class OtlpReceiver {
  private server?: Server;
  private readonly received: ReceivedExport[] = [];
  private readonly waiters = new Set<() => void>();
  private decoded: ReceivedSpan[] = [];
  private decodedCount = 0;

  async start(port = 0): Promise<void> {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const type = request.headers['content-type'] ?? '';
        const encoding = type.startsWith('application/x-protobuf') ? 'protobuf' : type.startsWith('application/json') ? 'json' : undefined;
        if (request.method !== 'POST' || request.url !== TRACES_PATH || encoding === undefined) {
          response.writeHead(request.url === TRACES_PATH ? 415 : 404).end();
          return;
        }
        let body = Buffer.concat(chunks);
        if (request.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        this.received.push({ encoding, headers: request.headers, body });
        // The whole-suite secret scan reads what left the gateways in spans too.
        recordEmission('otlp', `${payloadText({ encoding, headers: request.headers, body })}\n`);
        // An empty ExportTraceServiceResponse: every span accepted.
        if (encoding === 'json') response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        else response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        for (const wake of [...this.waiters]) wake();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** `http://127.0.0.1:<port>`: a gateway's OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  get url(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('the OTLP receiver is not listening');
    return `http://127.0.0.1:${address.port}`;
  }

  /** The full traces URL: a gateway's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. */
  get tracesUrl(): string {
    return `${this.url}${TRACES_PATH}`;
  }

  /** Every export received so far. */
  exports(): readonly ReceivedExport[] {
    return [...this.received];
  }

  /** Every span received so far, in the order they came. */
  spans(): ReceivedSpan[] {
    for (; this.decodedCount < this.received.length; this.decodedCount++) {
      this.decoded = this.decoded.concat(spansOf(this.received[this.decodedCount]!));
    }
    return [...this.decoded];
  }

  /** Resolves once a received span matches, with all that match; rejects after `timeoutMs`. */
  async waitForSpans(predicate: (span: ReceivedSpan) => boolean, timeoutMs = 10_000): Promise<ReceivedSpan[]> {
    await this.until(() => this.spans().some(predicate), timeoutMs, () => {
      const names = [...new Set(this.spans().map((s) => s.name))].join(', ');
      return `no matching span within ${timeoutMs} ms; received ${this.spans().length} spans named: ${names}`;
    });
    return this.spans().filter(predicate);
  }

  /**
   * The spans of one trace, once `complete` says it has what the test waits for (spans of one
   * request may come in more than one export); fails after `timeoutMs`.
   */
  async trace(traceId: string, complete: (trace: ReceivedTrace) => boolean, timeoutMs = 10_000): Promise<ReceivedTrace> {
    const current = (): ReceivedTrace => new ReceivedTrace(this.spans().filter((span) => span.traceId === traceId));
    await this.until(() => complete(current()), timeoutMs, () => {
      return `trace ${traceId} not complete within ${timeoutMs} ms; it holds: ${current().names().join(', ') || 'nothing'}`;
    });
    return current();
  }

  /** Checks `condition` at every export received, until it holds or `timeoutMs` passed. */
  private async until(condition: () => boolean, timeoutMs: number, failure: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(failure());
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  /** Forgets what was received. */
  clear(): void {
    this.received.length = 0;
    this.decoded = [];
    this.decodedCount = 0;
  }
}

/**
 * An export as text to search for secrets: protobuf strings are stored as they are (UTF-8 bytes),
 * so the raw body read byte for byte holds every one of them, whatever the framing around them.
 */
export function payloadText(received: ReceivedExport): string {
  return received.encoding === 'json' ? received.body.toString('utf8') : received.body.toString('latin1');
}

// ------------------------------------------------------------------ decoding

interface JsonKeyValue {
  key: string;
  value?: JsonAnyValue;
}

interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: JsonAnyValue[] };
  kvlistValue?: { values?: JsonKeyValue[] };
  bytesValue?: string;
}

interface JsonSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  traceState?: string;
  name?: string;
  kind?: number;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: JsonKeyValue[];
  events?: Array<{ name?: string; attributes?: JsonKeyValue[] }>;
  links?: Array<{ traceId?: string; spanId?: string; traceState?: string; attributes?: JsonKeyValue[] }>;
  status?: { code?: number; message?: string };
}

interface JsonTraceRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: JsonKeyValue[] };
    scopeSpans?: Array<{ scope?: { name?: string }; spans?: JsonSpan[] }>;
  }>;
}

function spansOf(received: ReceivedExport): ReceivedSpan[] {
  const request = (received.encoding === 'json' ? JSON.parse(received.body.toString('utf8')) : decodeProtobufTraceRequest(received.body)) as JsonTraceRequest;
  return (request.resourceSpans ?? []).flatMap((resourceSpans) => {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    return (resourceSpans.scopeSpans ?? []).flatMap((scopeSpans) =>
      (scopeSpans.spans ?? []).map((span) => ({
        traceId: hexId(span.traceId),
        spanId: hexId(span.spanId),
        parentSpanId: hexId(span.parentSpanId),
        traceState: span.traceState ?? '',
        name: span.name ?? '',
        kind: span.kind ?? 0,
        attributes: attributesOf(span.attributes),
        events: (span.events ?? []).map((event) => ({ name: event.name ?? '', attributes: attributesOf(event.attributes) })),
        links: (span.links ?? []).map((link) => ({
          traceId: hexId(link.traceId),
          spanId: hexId(link.spanId),
          traceState: link.traceState ?? '',
          attributes: attributesOf(link.attributes),
        })),
        status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
        resource,
        scope: scopeSpans.scope?.name ?? '',
        durationMs: Number(BigInt(span.endTimeUnixNano ?? 0) - BigInt(span.startTimeUnixNano ?? 0)) / 1e6,
      })),
    );
  });
}

/** OTLP/JSON carries ids as hex; an exporter that sent base64 would be read wrong, so it is refused here. */
function hexId(id: string | undefined): string {
  if (id === undefined || id === '') return '';
  if (!/^[0-9a-f]+$/.test(id)) throw new Error(`a trace or span id that is not lowercase hex: ${id}`);
  return id;
}

function attributesOf(list: JsonKeyValue[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((list ?? []).map(({ key, value }) => [key, valueOf(value)]));
}

function valueOf(value: JsonAnyValue | undefined): AttributeValue {
  if (value === undefined) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(valueOf);
  if (value.bytesValue !== undefined) return value.bytesValue;
  return undefined;
}
