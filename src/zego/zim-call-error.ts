import { GatewayError } from '../http/gateway-error.js';
import type { ZimOutcome } from './vendor-codes.js';

/** The final failure of a vendor call, after any retries, with the HTTP answer it maps to. */
export class ZimCallError extends GatewayError {
  constructor(
    readonly outcome: ZimOutcome | 'timeout' | 'unreachable',
    status: number,
    message: string,
    details: ConstructorParameters<typeof GatewayError>[2] = {},
  ) {
    super(status, message, details);
  }
}
