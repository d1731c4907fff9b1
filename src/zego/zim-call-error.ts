import { GatewayError } from '../http/gateway-error.js';
import type { ZimOutcome } from './vendor-codes.js';

/** The final failure of a vendor call, after any retries, with the HTTP answer it maps to. */
export class ZimCallError extends GatewayError {
  /**
   * An earlier attempt of the same call may have reached the vendor: its connection reset after
   * the request went out. A "room exists" then most likely means that attempt created the room.
   */
  earlierAttemptMayHaveActed = false;

  constructor(
    readonly outcome: ZimOutcome | 'timeout' | 'unreachable',
    status: number,
    message: string,
    details: ConstructorParameters<typeof GatewayError>[2] = {},
  ) {
    super(status, message, details);
  }
}
