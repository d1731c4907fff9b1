import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../redis/redis-connection.js';
import { LuaScript } from '../redis/lua-script.js';
import {
  storedAnswerJson,
  type Claim,
  type ClaimEnd,
  type ClaimResult,
  type IdempotencyStore,
} from './idempotency-store.js';

const BEGIN = LuaScript.load(new URL('./lua/idempotency-begin.lua', import.meta.url));
const FINISH = LuaScript.load(new URL('./lua/idempotency-finish.lua', import.meta.url));

/**
 * The fleet-wide store: one hash per key, claimed and finished by one script each, so two
 * replicas can never both run a request under the same key. Storage calls only: commands fail
 * fast when Redis is away (no offline queue, command timeouts), and FailoverIdempotencyStore
 * decides what then happens.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  constructor(private readonly redis: RedisClient) {}

  async claim(key: string, fingerprint: string, pendingTtlMs: number): Promise<ClaimResult> {
    const token = randomUUID();
    const reply = await BEGIN.run(this.redis, [key], [fingerprint, token, Math.ceil(pendingTtlMs)]);
    if (!Array.isArray(reply) || typeof reply[0] !== 'string') {
      throw new Error('the idempotency-begin script answered in an unexpected shape');
    }
    switch (reply[0]) {
      case 'started':
      case 'resumed':
        return { kind: reply[0], claim: this.claimFor(key, token) };
      case 'in-progress':
        return { kind: 'in-progress', msLeft: Math.max(0, Number(reply[1])) };
      case 'mismatch':
        return { kind: 'mismatch' };
      case 'done':
        return { kind: 'done', answer: storedAnswerJson.parse(reply[1]) };
      default:
        throw new Error('the idempotency-begin script answered in an unexpected shape');
    }
  }

  private claimFor(key: string, token: string): Claim {
    return {
      finish: async (end: ClaimEnd) => {
        const answer = end.action === 'done' ? storedAnswerJson.stringify(end.answer) : '';
        const ttlMs = end.action === 'release' ? 0 : Math.ceil(end.ttlMs);
        return (await FINISH.run(this.redis, [key], [token, end.action, answer, ttlMs])) === 1;
      },
    };
  }
}
