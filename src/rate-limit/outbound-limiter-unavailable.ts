import { GatewayError } from '../http/gateway-error.js';

/**
 * RATE_LIMIT_ON_REDIS_DOWN=reject while Redis is unreachable: without the shared budget the
 * gateway will not guess, and tells the caller to come back once Redis is.
 */
export class OutboundLimiterUnavailable extends GatewayError {
  constructor() {
    super(503, 'The shared vendor call budget is unavailable; retry later', { retryAfterSeconds: 1 });
  }
}
