import { type Attributes, INVALID_SPAN_CONTEXT, type Link, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { tracingRunning } from './running-tracing.js';

/**
 * The gateway's own spans: one tracer, their names and their attribute names, all here. With
 * tracing off the work runs with a span that records nothing and no context is touched (refusals
 * are served by the thousand a second), so callers never ask whether tracing is on; they ask
 * `span.isRecording()` only before computing an attribute that costs something.
 */
export const TRACER_NAME = 'zim-room-gateway';

/** A proxy: it delegates to the SDK's tracer once the preload registered one. */
const tracer = trace.getTracer(TRACER_NAME);

/** What the work gets with tracing off. */
const NOT_RECORDING: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

export const SPAN = {
  apiKey: 'gateway api key',
  clientQuota: 'gateway client quota',
  validation: 'gateway validation',
  idempotencyKey: 'gateway idempotency key',
  budgetWait: 'gateway budget wait',
  /** One vendor attempt, a CLIENT span: `ZIM CreateRoom`. */
  vendorAttempt: (action: string): string => `ZIM ${action}`,
  batchRoom: 'gateway batch room',
} as const;

export const ATTR = {
  clientId: 'zim_gateway.client.id',
  /** How the step ended: its own words per span (accepted, refused, replayed, granted, ...). */
  outcome: 'zim_gateway.outcome',
  priority: 'zim_gateway.priority',
  budgetWaitMs: 'zim_gateway.budget.wait_ms',
  /** `shared` (the fleet's budget in Redis), `local` (this replica's share) or `reject`. */
  budgetMode: 'zim_gateway.budget.mode',
  /** The slot came with no warm vendor connection idle and was exchanged for a later one. */
  budgetTraded: 'zim_gateway.budget.traded',
  invalidFields: 'zim_gateway.validation.invalid_fields',
  zimAction: 'zim.action',
  zimAttempt: 'zim.attempt',
  zimVendorCode: 'zim.vendor_code',
  zimRequestId: 'zim.request_id',
  /** The vendor may have acted on this attempt (its answer never came, or a reset after the request). */
  zimMayHaveActed: 'zim.may_have_acted',
  batchId: 'zim_gateway.batch.id',
  roomIndex: 'zim_gateway.batch.room_index',
  roomId: 'zim_gateway.room.id',
  errorType: 'error.type',
  httpMethod: 'http.request.method',
  httpStatus: 'http.response.status_code',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  urlFull: 'url.full',
} as const;

export interface GatewaySpanOptions {
  /** Undefined values are left out (a client not yet known). */
  attributes?: Attributes;
  kind?: SpanKind;
  links?: Link[];
  /** A new trace rather than a child of the active span (a batch room, linked to its submission instead). */
  root?: boolean;
  /** Errors thrown on purpose besides the 4xx refusals (a room handed back to its queue): not failures of the span. */
  expected?: (error: unknown) => boolean;
}

/**
 * Runs `work` inside a new active span and ends it when `work` settles. A refusal the gateway
 * answers on purpose (a 4xx) leaves the status unset; anything else thrown marks the span failed
 * with the error's class, never its message (messages may quote what a caller sent).
 */
export function inSpan<T>(name: string, options: GatewaySpanOptions, work: (span: Span) => Promise<T>): Promise<T> {
  if (!tracingRunning()) return work(NOT_RECORDING);
  const { attributes, kind = SpanKind.INTERNAL, links, root, expected } = options;
  return tracer.startActiveSpan(name, { attributes: defined(attributes), kind, links, root }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      markFailure(span, error, expected);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The same for synchronous work (a guard that only compares digests). */
export function inSpanSync<T>(name: string, options: GatewaySpanOptions, work: (span: Span) => T): T {
  if (!tracingRunning()) return work(NOT_RECORDING);
  const { attributes, kind = SpanKind.INTERNAL, links, root, expected } = options;
  return tracer.startActiveSpan(name, { attributes: defined(attributes), kind, links, root }, (span) => {
    try {
      return work(span);
    } catch (error) {
      markFailure(span, error, expected);
      throw error;
    } finally {
      span.end();
    }
  });
}

function defined(attributes: GatewaySpanOptions['attributes']): Attributes | undefined {
  if (attributes === undefined) return undefined;
  const kept: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) kept[key] = value;
  return kept;
}

function markFailure(span: Span, error: unknown, expected?: (error: unknown) => boolean): void {
  const name = error instanceof Error ? error.constructor.name : typeof error;
  span.setAttribute(ATTR.errorType, name);
  if (isRefusal(error) || expected?.(error)) return;
  span.setStatus({ code: SpanStatusCode.ERROR, message: name });
}

/** An error that carries the 4xx it is answered with (a GatewayError refusal): answered on purpose. */
function isRefusal(error: unknown): boolean {
  const status = (error as { status?: unknown } | null)?.status;
  return error instanceof Error && typeof status === 'number' && status >= 400 && status < 500;
}
