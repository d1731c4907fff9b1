import { Logger } from '@nestjs/common';
import { Cluster } from 'ioredis';
import type { RedisClient } from './redis-connection.js';

/** What Redis said of its maxmemory-policy: safe (noeviction), unsafe (it may drop data), or unknown (CONFIG refused). */
export type EvictionPolicyState = { kind: 'safe' | 'unsafe'; policy: string } | { kind: 'unknown' };

/** How often the policy is read again (an operator may change it at run time). */
const CHECK_MS = 60_000;

/**
 * Watches Redis's maxmemory-policy for the data that must not vanish (queued batch rooms): any
 * policy but `noeviction` lets Redis drop keys, jobs among them, when memory runs out. Logs a
 * warning when it is unsafe and keeps the state for /metrics. On a Cluster every primary is read;
 * one unsafe primary makes the whole unsafe. A managed service that refuses CONFIG leaves it unknown.
 */
export class EvictionPolicyWatch {
  private readonly logger = new Logger('Redis');
  private current: EvictionPolicyState = { kind: 'unknown' };
  private timer?: NodeJS.Timeout;
  private warned = '';

  constructor(private readonly redis: RedisClient) {}

  get state(): EvictionPolicyState {
    return this.current;
  }

  start(): void {
    // At start the connection may not be up yet: read the policy whenever it (re)connects too.
    this.redis.on('ready', this.onReady);
    if (this.redis.status === 'ready') void this.check();
    this.timer = setInterval(() => void this.check(), CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.redis.off('ready', this.onReady);
  }

  private readonly onReady = (): void => void this.check();

  async check(): Promise<EvictionPolicyState> {
    try {
      const nodes = this.redis instanceof Cluster ? this.redis.nodes('master') : [this.redis];
      const policies = await Promise.all(nodes.map(async (node) => ((await node.config('GET', 'maxmemory-policy')) as string[])[1] ?? ''));
      const unsafe = policies.find((policy) => policy !== 'noeviction');
      this.current = unsafe === undefined ? { kind: 'safe', policy: 'noeviction' } : { kind: 'unsafe', policy: unsafe };
    } catch {
      // Redis away, or CONFIG disabled (managed services): keep what was known.
      return this.current;
    }
    if (this.current.kind === 'unsafe' && this.warned !== this.current.policy) {
      this.logger.warn(
        `Redis maxmemory-policy is ${this.current.policy}: under memory pressure Redis may evict queued batch rooms; ` +
          "set it to noeviction (and keep data with AOF or the managed service's persistence)",
      );
    }
    this.warned = this.current.kind === 'unsafe' ? this.current.policy : '';
    return this.current;
  }
}
