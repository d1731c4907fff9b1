import { GatewayError } from '../http/gateway-error.js';
import { IDEMPOTENCY_KEY_HEADER } from './idempotency-key.js';
import type { StoredAnswer } from './idempotency-store.js';

/** Another request with the same key is still running. */
export class IdempotencyKeyInProgress extends GatewayError {
  constructor() {
    super(
      409,
      `${IDEMPOTENCY_KEY_HEADER}: a request with this key is still in progress; retry later`,
      { retryAfterSeconds: 1 },
    );
  }
}

const REUSED = 'this key was already used with a different request body';

/** The key was used before with another body. */
export class IdempotencyKeyReused extends GatewayError {
  constructor() {
    super(422, `${IDEMPOTENCY_KEY_HEADER}: ${REUSED}`, {
      fieldErrors: [{ field: IDEMPOTENCY_KEY_HEADER, reason: REUSED }],
    });
  }
}

/** A stored error answer, rendered again by HttpExceptionFilter in the one error shape. */
export class ReplayedError extends GatewayError {
  constructor(answer: Extract<StoredAnswer, { kind: 'error' }>) {
    super(answer.status, answer.message, {
      ...(answer.zegoCode !== undefined && { zegoCode: answer.zegoCode }),
      ...(answer.zegoRequestId !== undefined && { zegoRequestId: answer.zegoRequestId }),
      ...(answer.retryAfterSeconds !== undefined && { retryAfterSeconds: answer.retryAfterSeconds }),
    });
  }
}
