import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { type Span, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import axios, { type AxiosInstance, isAxiosError } from 'axios';
import { APP_CONFIG } from '../config/config.module.js';
import { currentRequestProgress, inRequestStage } from '../http/request-progress.js';
import { vendorAttemptStage } from '../http/request-stage.js';
import {
  OutboundRateLimiter,
  OutboundRateLimitRefusal,
  type AcquireOptions,
  type SlotReadiness,
} from '../rate-limit/outbound-rate-limiter.js';
import type { OutboundSettings, Priority } from '../rate-limit/rate-limit.settings.js';
import { SharedStoreUnavailable } from '../redis/shared-store-unavailable.js';
import { ATTR, inSpan, SPAN } from '../tracing/gateway-tracer.js';
import { untraced } from '../tracing/running-tracing.js';
import { CallDeadlinePassed } from './call-deadline-passed.js';
import { retryDelayMs } from './retry-backoff.js';
import { ruleForCode } from './vendor-codes.js';
import { ZegoSigner } from './zego-signer.js';
import { ZimCallError } from './zim-call-error.js';
import { VendorConnectionPool, type Departure } from './connection-pool/vendor-connection-pool.js';
import { ZimCallEvents, type ZimSlotEvent } from './zim-call-events.js';
import type { ZegoSettings } from './zego.settings.js';

/** What every ZIM answer carries; actions add their own fields. */
export interface ZimReply {
  Code: number;
  Message?: string;
  RequestId?: string;
  [field: string]: unknown;
}

export interface ZimCallOptions {
  /** The caller went away: stop waiting for a limiter slot or a retry. A sent call is not aborted. */
  signal?: AbortSignal;
  /**
   * An earlier request for the same work may have acted (an Idempotency-Key repeat after a 504):
   * the final error says so (ZimCallError.earlierAttemptMayHaveActed), as after a connection reset.
   */
  earlierAttemptMayHaveActed?: boolean;
  /** Whose share of the vendor budget the call counts against (the authenticated client id). */
  client?: string;
  /** `interactive` (the default) or `batch`: batch waits after interactive work, and may wait longer. */
  priority?: Priority;
  /**
   * When the call must be over, on performance.now()'s clock. Without it: the deadline of the
   * request it is made for (its RequestProgress, from its arrival), else ZEGO_CALL_DEADLINE_MS
   * from now (a call made without a request, such as a batch's).
   */
  deadline?: number;
}

/** No connection was made: the vendor cannot have acted. Retried. */
const UNSENT_NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * The connection died before any byte of an answer. Usually a keep-alive socket the vendor had
 * just closed, so the request was never read, and retried; but the vendor may have acted first,
 * which the call remembers (ZimCallError.earlierAttemptMayHaveActed).
 */
const MAYBE_DELIVERED_NETWORK_ERRORS = new Set(['ECONNRESET', 'EPIPE']);

const MAX_RESPONSE_BYTES = 1024 * 1024;

/** Requests of one call sent again after the vendor closed their connection unread (each on a warm connection). */
const MAX_UNREAD_RESENDS = 2;

type Attempt =
  | { ok: true; reply: ZimReply }
  | {
      ok: false;
      retryable: boolean;
      error: ZimCallError;
      mayHaveActed?: boolean;
      /** Written on a kept-alive connection the vendor had just closed as idle: it never read it. */
      unread?: boolean;
    };

/**
 * Sends one ZIM server API action: waits for an outbound slot, signs, posts, classifies the
 * answer through the vendor code table, and retries only what the vendor most likely did not do
 * (remembering when it might have). Each call leaves at its slot on a warm connection of the
 * VendorConnectionPool, or trades the slot for a later one.
 * Knows nothing about rooms.
 */
@Injectable()
export class ZimClient {
  private readonly logger = new Logger(ZimClient.name);
  private readonly http: AxiosInstance;
  /** Where every attempt goes, as its span says it. */
  private readonly vendorAddress: Record<string, string | number>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: { readonly zego: ZegoSettings; readonly outbound: OutboundSettings },
    private readonly signer: ZegoSigner,
    private readonly limiter: OutboundRateLimiter,
    private readonly events: ZimCallEvents,
    private readonly connections: VendorConnectionPool,
  ) {
    this.http = axios.create({
      baseURL: config.zego.apiBaseUrl,
      httpAgent: connections.agent,
      httpsAgent: connections.agent,
      headers: { 'Content-Type': 'application/json' },
      // We classify every status and parse the body ourselves: a non-JSON body is an answer too.
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      maxContentLength: MAX_RESPONSE_BYTES,
      maxRedirects: 0,
    });
    const vendor = new URL(config.zego.apiBaseUrl);
    this.vendorAddress = {
      [ATTR.httpMethod]: 'POST',
      [ATTR.serverAddress]: vendor.hostname,
      [ATTR.serverPort]: Number(vendor.port || (vendor.protocol === 'https:' ? 443 : 80)),
    };
  }

  async call(action: string, body: object, options: ZimCallOptions = {}): Promise<ZimReply> {
    const departure = this.connections.departure();
    try {
      return await this.attempts(action, body, options, departure);
    } finally {
      departure.done();
    }
  }

  private async attempts(action: string, body: object, options: ZimCallOptions, departure: Departure): Promise<ZimReply> {
    const { timeoutMs, callDeadlineMs, maxAttempts } = this.config.zego;
    const { client, priority = 'interactive' } = options;
    const maxWaitMs = priority === 'batch' ? this.config.outbound.maxWaitMsBatch : this.config.outbound.maxWaitMs;
    // The request's deadline comes from the async context rather than through RoomsService: it is
    // plain data (no HTTP object below RoomsService), and every caller inside a request keeps to
    // it without passing it on. Its stages are named the same way (inRequestStage).
    const deadline = options.deadline ?? currentRequestProgress()?.deadline ?? performance.now() + callDeadlineMs;
    // The request spent its time before the call (a slow body, slow Redis): nothing is sent.
    if (performance.now() >= deadline) throw new CallDeadlinePassed();
    let earlierAttemptMayHaveActed = options.earlierAttemptMayHaveActed === true;
    // The wait never eats into the time a full attempt needs before the deadline.
    const slot = (): Promise<void> =>
      inRequestStage('outbound slot', () =>
        this.waitForSlot(action, {
          maxWaitMs: Math.max(0, Math.min(maxWaitMs, deadline - performance.now() - timeoutMs)),
          signal: options.signal,
          client,
          priority,
          readiness: departure,
        }),
      );
    // An attempt never runs past the deadline (only the first can find less than a full timeout left).
    const send = (attempt: number): Promise<Attempt> =>
      inRequestStage(vendorAttemptStage(attempt), () =>
        this.send(action, body, departure, Math.max(1, Math.min(timeoutMs, Math.floor(deadline - performance.now()))), attempt),
      );
    let unreadResends = 0;
    for (let attempt = 1; ; attempt++) {
      await slot();
      const sentAt = performance.now();
      let result = await send(attempt);
      while (!result.ok && result.unread && unreadResends < MAX_UNREAD_RESENDS) {
        // The vendor closed that connection as idle before it read the request: nothing was done
        // and no slot spent at its door. Sent again on a warm connection while the slot still
        // holds, or on a new slot; either way not a failed attempt.
        unreadResends++;
        this.events.transport({ kind: 'resent', ms: performance.now() - sentAt });
        if (!(this.stillOnSlot(departure) && departure.ready())) await slot();
        result = await send(attempt);
      }
      const durationMs = performance.now() - sentAt;
      if (result.ok) {
        this.events.attempt({
          action,
          outcome: 'success',
          zegoCode: result.reply.Code,
          zegoRequestId: typeof result.reply.RequestId === 'string' ? result.reply.RequestId : undefined,
          durationMs,
          attempt,
          willRetry: false,
        });
        return result.reply;
      }

      const { error } = result;
      if (error.outcome === 'gateway-misconfigured') {
        this.logger.error(
          `Configuration error: the vendor refused ${action} with code ${error.details.zegoCode}; ` +
            'check ZEGO_APP_ID, ZEGO_SERVER_SECRET, the clock and the vendor console',
        );
      }
      const delay = retryDelayMs(attempt);
      const retryFits = performance.now() + delay + timeoutMs <= deadline;
      const willRetry = result.retryable && attempt < maxAttempts && retryFits;
      this.events.attempt({
        action,
        outcome: error.outcome,
        zegoCode: error.details.zegoCode,
        zegoRequestId: error.details.zegoRequestId,
        durationMs,
        attempt,
        willRetry,
      });
      if (!willRetry) {
        error.earlierAttemptMayHaveActed = earlierAttemptMayHaveActed;
        throw error;
      }
      earlierAttemptMayHaveActed ||= result.mayHaveActed === true && result.unread !== true;
      this.logger.warn(
        `${action} attempt ${attempt} failed (${error.details.zegoCode ?? error.outcome}); retrying in ${Math.round(delay)} ms`,
      );
      await inRequestStage('retry backoff', () => sleep(delay, undefined, { signal: options.signal }));
    }
  }

  /** Takes an outbound slot, and reports how long that took and how it ended (an event, and the budget wait's span). */
  private waitForSlot(action: string, slot: AcquireOptions & { priority: Priority }): Promise<void> {
    return inSpan(SPAN.budgetWait, { attributes: { [ATTR.clientId]: slot.client, [ATTR.priority]: slot.priority } }, async (span) => {
      const startedAt = performance.now();
      let traded = false;
      const readiness = span.isRecording() && slot.readiness ? watchTrades(slot.readiness, () => (traded = true)) : slot.readiness;
      const report = (outcome: ZimSlotEvent['outcome']): void => {
        const waitedMs = performance.now() - startedAt;
        this.events.slot({ action, outcome, waitedMs, client: slot.client, priority: slot.priority });
        span.setAttributes({
          [ATTR.outcome]: outcome,
          [ATTR.budgetWaitMs]: Math.round(waitedMs * 10) / 10,
          [ATTR.budgetMode]: this.limiter.mode,
          [ATTR.budgetTraded]: traded,
        });
      };
      try {
        await this.limiter.acquire({ ...slot, readiness });
      } catch (error) {
        if (error instanceof OutboundRateLimitRefusal) report('refused');
        else if (error instanceof SharedStoreUnavailable) report('unavailable');
        else report('aborted');
        throw error;
      }
      report('granted');
    });
  }

  /** A resent request still reaches the vendor within its slot's tolerance (half the safety margin). */
  private stillOnSlot(departure: Departure): boolean {
    const slotAt = departure.slotAt ?? performance.now();
    return performance.now() - slotAt <= this.config.outbound.safetyMarginMs / 2;
  }

  /** One attempt, as a CLIENT span of its own (a resend of an unread request is another). */
  private send(action: string, body: object, departure: Departure, timeoutMs: number, attempt: number): Promise<Attempt> {
    const attributes = { ...this.vendorAddress, [ATTR.zimAction]: action, [ATTR.zimAttempt]: attempt };
    return inSpan(SPAN.vendorAttempt(action), { kind: SpanKind.CLIENT, attributes }, async (span) => {
      const result = await this.post(action, body, departure, timeoutMs, span);
      recordAttempt(span, result);
      return result;
    });
  }

  private async post(action: string, body: object, departure: Departure, timeoutMs: number, span: Span): Promise<Attempt> {
    const timeout = AbortSignal.timeout(timeoutMs);
    let sent: Record<string, string> | undefined;
    let status: number;
    let text: string;
    try {
      // The vendor is a third party: its call carries no trace headers (and gets no span of the HTTP instrumentation).
      const response = await untraced(() =>
        departure.send(() => {
          sent = { Action: action, ...this.signer.sign() };
          return this.http.post<string>('/', JSON.stringify(body), { params: sent, signal: timeout });
        }),
      );
      status = response.status;
      text = typeof response.data === 'string' ? response.data : '';
    } catch (error) {
      return this.transportFailure(action, error, timeout.aborted ? timeoutMs : undefined);
    } finally {
      // Written once the request is out: nothing is added between the slot and the wire.
      if (sent && span.isRecording()) span.setAttribute(ATTR.urlFull, urlForSpans(this.config.zego.apiBaseUrl, sent));
    }
    span.setAttribute(ATTR.httpStatus, status);
    return this.classify(status, text);
  }

  private classify(status: number, text: string): Attempt {
    if (status < 200 || status > 299) {
      return upstream(`The vendor answered HTTP ${status}`);
    }
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch {
      return upstream('The vendor answered with a body that is not JSON');
    }
    if (!isReply(reply)) return upstream('The vendor answer carries no numeric Code');

    const rule = ruleForCode(reply.Code);
    if (rule.outcome === 'success') return { ok: true, reply };
    return {
      ok: false,
      retryable: rule.retryable,
      error: new ZimCallError(rule.outcome, rule.status, rule.message, {
        zegoCode: reply.Code,
        zegoRequestId: typeof reply.RequestId === 'string' ? reply.RequestId : undefined,
        retryAfterSeconds: rule.retryAfterSeconds,
      }),
    };
  }

  /**
   * Axios errors hold the signed URL and headers, so only their code travels on; the original
   * error object is dropped here.
   */
  private transportFailure(action: string, error: unknown, timedOutAfterMs: number | undefined): Attempt {
    if (timedOutAfterMs !== undefined) {
      return {
        ok: false,
        retryable: false,
        error: new ZimCallError(
          'timeout',
          504,
          `The vendor did not answer within ${timedOutAfterMs} ms; the room may or may not exist`,
        ),
      };
    }
    const code = (isAxiosError(error) ? error.code : undefined) ?? 'UNKNOWN';
    if (code === 'ERR_FR_MAX_BODY_LENGTH_EXCEEDED' || code === 'ERR_BAD_RESPONSE') {
      return upstream('The vendor answer could not be read');
    }
    this.logger.warn(`${action} transport error ${code}`);
    const mayHaveActed = MAYBE_DELIVERED_NETWORK_ERRORS.has(code);
    return {
      ok: false,
      retryable: mayHaveActed || UNSENT_NETWORK_ERRORS.has(code),
      mayHaveActed,
      unread: closedAsIdle(error),
      error: new ZimCallError('unreachable', 502, `The vendor could not be reached (${code})`),
    };
  }
}

/**
 * The keep-alive race: a request written on a reused connection that the vendor ended (FIN, Node's
 * "socket hang up") before any byte of an answer. A server closes a connection so only while it is
 * idle, between requests, so it never read this one. A reset (RST) after a request may come from
 * a vendor that read it and then failed, so it is not taken as unread.
 */
function closedAsIdle(error: unknown): boolean {
  if (!isAxiosError(error) || error.response !== undefined) return false;
  const request = error.request as { reusedSocket?: boolean } | undefined;
  return request?.reusedSocket === true && error.code === 'ECONNRESET' && error.message === 'socket hang up';
}

/** Signed query values never reach a span (the URL shows the rest: the action, AppId, Timestamp). */
const SIGNED_PARAMS = new Set(['Signature', 'SignatureNonce']);

function urlForSpans(baseUrl: string, params: Record<string, string>): string {
  const url = new URL(baseUrl);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, SIGNED_PARAMS.has(name) ? 'REDACTED' : value);
  return url.toString();
}

/** How the attempt ended, on its span. It may have acted when it created the room, or when no answer says it did not. */
function recordAttempt(span: Span, result: Attempt): void {
  if (result.ok) {
    span.setAttributes({
      [ATTR.outcome]: 'success',
      [ATTR.zimVendorCode]: result.reply.Code,
      [ATTR.zimMayHaveActed]: true,
      ...(typeof result.reply.RequestId === 'string' && { [ATTR.zimRequestId]: result.reply.RequestId }),
    });
    return;
  }
  const { error } = result;
  span.setAttributes({
    [ATTR.outcome]: error.outcome,
    [ATTR.errorType]: error.outcome,
    [ATTR.zimMayHaveActed]: error.outcome === 'timeout' || (result.mayHaveActed === true && result.unread !== true),
    ...(error.details.zegoCode !== undefined && { [ATTR.zimVendorCode]: error.details.zegoCode }),
    ...(error.details.zegoRequestId !== undefined && { [ATTR.zimRequestId]: error.details.zegoRequestId }),
  });
  if (error.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: error.outcome });
}

/** The readiness the limiter asks at the slot, telling `onTrade` when the call was not ready and the slot was traded. */
function watchTrades(readiness: SlotReadiness, onTrade: () => void): SlotReadiness {
  return {
    expect: (slotAt) => readiness.expect(slotAt),
    taken: (wired) => readiness.taken?.(wired),
    ready: () => {
      const ready = readiness.ready();
      if (!ready) onTrade();
      return ready;
    },
  };
}

function upstream(message: string): Attempt {
  return { ok: false, retryable: false, error: new ZimCallError('upstream-error', 502, message) };
}

function isReply(value: unknown): value is ZimReply {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { Code?: unknown }).Code === 'number' &&
    Number.isInteger((value as { Code: number }).Code)
  );
}
