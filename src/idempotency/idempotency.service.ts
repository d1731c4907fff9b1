import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import { APP_CONFIG } from '../config/config.module.js';
import { GatewayError } from '../http/gateway-error.js';
import { inRequestStage } from '../http/request-progress.js';
import { RedisKeys } from '../redis/redis-keys.js';
import { ATTR, inSpan, SPAN } from '../tracing/gateway-tracer.js';
import { ZimCallError } from '../zego/zim-call-error.js';
import { IdempotencyKeyInProgress, IdempotencyKeyReused, ReplayedError } from './idempotency.errors.js';
import { IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER, bodyFingerprint, readIdempotencyKey } from './idempotency-key.js';
import { IDEMPOTENCY_STORE, type ClaimEnd, type ClaimResult, type IdempotencyStore, type StoredAnswer } from './idempotency-store.js';
import type { IdempotencySettings } from './idempotency.settings.js';

/** What a claim on the key came to, as its span says it: `replayed` is a stored answer given again. */
const CLAIM_OUTCOMES: Readonly<Record<ClaimResult['kind'], string>> = {
  started: 'claimed',
  resumed: 'resumed',
  'in-progress': 'in-progress',
  mismatch: 'reused-with-another-body',
  done: 'replayed',
};

/** A claim outlives the longest a request can spend on the vendor by this much. */
export const PENDING_MARGIN_MS = 5_000;

export interface IdempotentCall<T extends object> {
  /** Authenticated (ApiKeyGuard ran): its client scopes the key. */
  request: AuthenticatedRequest;
  /** The body: its fingerprint tells a repeat from a reuse of the key. */
  body: unknown;
  /** The route (`POST /rooms`): a key is the client's and the route's, so one key on two routes is two keys. */
  route: string;
  /** The route's success status (201, 202): stored with the answer. */
  successStatus: number;
  /**
   * The work itself (the vendor call). `resumed`: an earlier attempt under the key ended
   * ambiguous (504) and may have acted, so the work may find it done.
   */
  perform: (resumed: boolean) => Promise<T>;
}

/**
 * The Idempotency-Key header of POST /rooms and POST /rooms/batches (IdempotencyInterceptor applies it). Without the
 * header the call simply runs. With it: the first request claims the key (with its body's
 * fingerprint) and runs; a repeat with the same body gets the stored final answer
 * (Idempotent-Replayed: true) without running again; a repeat with another body 422; a repeat
 * while the first runs 409 with Retry-After.
 *
 * Stored (for IDEMPOTENCY_TTL_S): success and the vendor's definite 4xx answers (400, 409, 422).
 * Not stored, the key is released and the next repeat runs again: anything transient or not the
 * vendor's word (429, 5xx but 504, limiter refusals, a caller that hung up, unexpected errors).
 * A 504 leaves the key `ambiguous`: the next repeat runs again, told that it resumes (`resumed`),
 * and what it answers is stored.
 */
@Injectable()
export class IdempotencyService {
  private readonly logger = new Logger('Idempotency');

  constructor(
    @Inject(APP_CONFIG)
    private readonly config: {
      /** ZEGO_CALL_DEADLINE_MS: how long a request under a key may run. */
      readonly zego: { readonly callDeadlineMs: number };
      readonly idempotency: IdempotencySettings;
    },
    private readonly keys: RedisKeys,
    @Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore,
  ) {}

  /** How long a claim holds a key when its holder never finishes (a crashed replica). */
  get pendingTtlMs(): number {
    return this.config.zego.callDeadlineMs + PENDING_MARGIN_MS;
  }

  get answerTtlMs(): number {
    return this.config.idempotency.ttlSeconds * 1000;
  }

  async run<T extends object>(call: IdempotentCall<T>): Promise<T> {
    const { request } = call;
    const key = readIdempotencyKey(request.headers[IDEMPOTENCY_KEY_HEADER.toLowerCase()]);
    if (key === undefined) return call.perform(false);
    const recordKey = this.keys.idempotencyRecord(request.client!.clientId, call.route, key);

    const claimed = await inSpan(SPAN.idempotencyKey, { attributes: { [ATTR.clientId]: request.client!.clientId } }, async (span) => {
      const claim = await inRequestStage('idempotency key', () =>
        this.store.claim(recordKey, bodyFingerprint(call.body), this.pendingTtlMs),
      );
      span.setAttribute(ATTR.outcome, CLAIM_OUTCOMES[claim.kind]);
      return claim;
    });
    switch (claimed.kind) {
      case 'mismatch':
        throw new IdempotencyKeyReused();
      case 'in-progress':
        throw new IdempotencyKeyInProgress();
      case 'done':
        request.res?.setHeader(IDEMPOTENT_REPLAYED_HEADER, 'true');
        return replay<T>(claimed.answer);
    }

    const { claim } = claimed;
    const finish = async (end: ClaimEnd): Promise<void> => {
      if (!(await inRequestStage('idempotency key', () => claim.finish(end)))) {
        this.logger.warn(`An idempotency claim lapsed before its request finished (${end.action})`);
      }
    };
    let result: T;
    try {
      result = await call.perform(claimed.kind === 'resumed');
    } catch (error) {
      await finish(this.endAfterFailure(error));
      throw error;
    }
    await finish({ action: 'done', answer: successAnswer(call.successStatus, result), ttlMs: this.answerTtlMs });
    return result;
  }

  private endAfterFailure(error: unknown): ClaimEnd {
    if (error instanceof ZimCallError && error.outcome === 'timeout') {
      return { action: 'ambiguous', ttlMs: this.answerTtlMs };
    }
    const answer = definiteErrorAnswer(error);
    return answer ? { action: 'done', answer, ttlMs: this.answerTtlMs } : { action: 'release' };
  }
}

function successAnswer(status: number, body: object): StoredAnswer {
  return { kind: 'success', status, body: { ...(body as Record<string, unknown>) } };
}

/** The vendor's own final word on the request: a 4xx it answered with a code, 429 aside. */
export function definiteErrorAnswer(error: unknown): StoredAnswer | undefined {
  if (!(error instanceof GatewayError)) return undefined;
  const { status, details } = error;
  if (details.zegoCode === undefined || status < 400 || status >= 500 || status === 429) return undefined;
  return {
    kind: 'error',
    status,
    message: error.publicMessage,
    zegoCode: details.zegoCode,
    ...(details.zegoRequestId !== undefined && { zegoRequestId: details.zegoRequestId }),
    ...(details.retryAfterSeconds !== undefined && { retryAfterSeconds: details.retryAfterSeconds }),
  };
}

function replay<T>(answer: StoredAnswer): T {
  if (answer.kind === 'error') throw new ReplayedError(answer);
  return { ...answer.body } as T;
}
