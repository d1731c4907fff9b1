import { GatewayError } from '../http/gateway-error.js';

/**
 * RATE_LIMIT_ON_REDIS_DOWN=reject while Redis is unreachable: a shared store (the vendor call
 * budget, client quotas, idempotency keys) will not guess without Redis, and tells the caller to
 * come back once Redis is.
 */
export class SharedStoreUnavailable extends GatewayError {
  constructor(
    /** Which store, for the message: `the shared vendor call budget`, `the idempotency store`. */
    store: string,
  ) {
    super(503, `${store.charAt(0).toUpperCase()}${store.slice(1)} is unavailable; retry later`, { retryAfterSeconds: 1 });
  }
}
