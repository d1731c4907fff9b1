import type { EnvReader } from '../config/env-reader.js';

export interface IdempotencySettings {
  /** How long the final answer of a request sent with an Idempotency-Key is kept. */
  readonly ttlSeconds: number;
}

/** IDEMPOTENCY_TTL_S. */
export function readIdempotencySettings(read: EnvReader): IdempotencySettings {
  return { ttlSeconds: read.int('IDEMPOTENCY_TTL_S', { default: 86_400, min: 60, max: 2_592_000 }) };
}
