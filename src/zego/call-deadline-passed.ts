import { GatewayError } from '../http/gateway-error.js';

/**
 * The request's deadline had passed before its vendor call could start (the time went on
 * receiving a slow body, or on slow stores before the call): nothing was sent, so a retry is safe
 * and nothing is kept under an Idempotency-Key.
 */
export class CallDeadlinePassed extends GatewayError {
  constructor() {
    super(503, 'This request used up its deadline before the vendor could be called; nothing was sent, retry', {
      retryAfterSeconds: 1,
    });
  }
}
