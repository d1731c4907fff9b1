import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from './redis-connection.js';

/**
 * A Lua script kept in its own file beside the feature it serves (`<feature>/lua/<name>.lua`),
 * read once when that feature's module loads: `LuaScript.load(new URL('./lua/x.lua', import.meta.url))`.
 * Redis caches it by SHA1 on first use: calls go out as EVALSHA, and only a server that does not
 * know the script yet (first call, or after a restart or failover) gets the source once through EVAL.
 */
export class LuaScript {
  readonly sha1: string;

  private constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha1 = createHash('sha1').update(source).digest('hex');
  }

  static load(location: URL): LuaScript {
    return new LuaScript(basename(fileURLToPath(location)), readFileSync(location, 'utf8'));
  }

  async run(redis: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha1, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
