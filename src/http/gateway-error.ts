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
      zegoCode?: number;
      zegoRequestId?: string;
      cause?: unknown;
    } = {},
  ) {
    super(publicMessage, { cause: details.cause });
    this.name = new.target.name;
  }
}
