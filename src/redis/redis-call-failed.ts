/**
 * Redis did not answer a store's call as it should: down, unreachable, too slow, failing the
 * script, or answering in a shape the store cannot read. Never reaches a client: RedisDownPolicy
 * decides what happens instead.
 */
export class RedisCallFailed extends Error {
  constructor(cause: unknown) {
    super(`Redis did not answer: ${describeRedisFailure(cause)}`, { cause });
    this.name = 'RedisCallFailed';
  }
}

/** A short reason for logs. ioredis messages name hosts and ports, never credentials. */
export function describeRedisFailure(error: unknown): string {
  if (error instanceof RedisCallFailed) return describeRedisFailure(error.cause);
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${code} (${error.message})` : error.message;
  }
  return String(error);
}

/** Runs one call of a store to Redis (its command and the reading of the answer): any failure surfaces as RedisCallFailed. */
export async function callRedis<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw error instanceof RedisCallFailed ? error : new RedisCallFailed(error);
  }
}
