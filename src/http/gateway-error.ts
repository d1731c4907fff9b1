import type { FieldError } from './error-body.js';

/**
 * A failure with a known HTTP answer. Domain code throws these; HttpExceptionFilter renders
 * them, so every error reaches the client in the same shape.
 */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    /** Safe to show a client: never holds a secret, a key or a signed URL. */
    readonly publicMessage: string,
    readonly details: {
      retryAfterSeconds?: number;
      /** Input a client must change, named as in the request (rendered as `errors`). */
      fieldErrors?: FieldError[];
      zegoCode?: number;
      zegoRequestId?: string;
      cause?: unknown;
    } = {},
  ) {
    super(publicMessage, { cause: details.cause });
    this.name = new.target.name;
  }
}
