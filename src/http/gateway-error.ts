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
      /** How many more fields were refused than fieldErrors lists (rendered as `moreErrors`). */
      moreFieldErrors?: number;
      zegoCode?: number;
      zegoRequestId?: string;
      cause?: unknown;
    } = {},
  ) {
    // V8 records a stack trace for every Error it builds; nobody reads an expected refusal's.
    const stackFrames = Error.stackTraceLimit;
    if (status < 500) Error.stackTraceLimit = 0;
    super(publicMessage, { cause: details.cause });
    Error.stackTraceLimit = stackFrames;
    this.name = new.target.name;
  }

  /** What the request log groups refusals of this kind under: a short phrase that does not vary with the input. */
  get refusalReason(): string {
    return this.publicMessage;
  }
}
