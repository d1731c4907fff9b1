/**
 * Redis could not answer for the shared limiter (down, unreachable, too slow, or failing the
 * script). Never reaches a client: the limiter switches mode instead.
 */
export class SharedLimiterUnavailable extends Error {
  constructor(cause: unknown) {
    super(`Redis did not answer for the shared limiter: ${describeRedisFailure(cause)}`, { cause });
    this.name = 'SharedLimiterUnavailable';
  }
}

/** A short reason for logs. ioredis messages name hosts and ports, never credentials. */
export function describeRedisFailure(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${code} (${error.message})` : error.message;
  }
  return String(error);
}
