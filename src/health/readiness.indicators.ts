import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { APP_CONFIG } from '../config/config.module.js';
import { MountedFileWatcher } from '../config/mounted-file-watcher.js';
import { GracefulShutdown } from '../lifecycle/graceful-shutdown.js';
import { OutboundRateLimiter } from '../rate-limit/outbound-rate-limiter.js';
import { answerWithin } from '../redis/answer-within.js';
import { describeRedisFailure } from '../redis/redis-call-failed.js';
import type { RedisClient } from '../redis/redis-connection.js';
import { RedisDownPolicy } from '../redis/redis-down-policy.js';
import { RedisKeys } from '../redis/redis-keys.js';
import { REDIS } from '../redis/redis.module.js';

/** Redis must answer within this, or it counts as unreachable for readiness. */
const REDIS_PROBE_TIMEOUT_MS = 1000;

/**
 * What readiness is made of. A replica is ready while it can create rooms within the vendor's
 * budget: not shutting down, and either Redis answers or the limiter may fall back to its own
 * share (RATE_LIMIT_ON_REDIS_DOWN=local, reported as `degraded`, still 200). With `reject`, an
 * unreachable Redis makes the replica unready, since it would answer every call with 503. A stale
 * mounted secret file is `degraded` too: the last good value still works.
 */
@Injectable()
export class ReadinessIndicators {
  constructor(
    private readonly indicators: HealthIndicatorService,
    @Inject(REDIS) private readonly redis: RedisClient | null,
    private readonly keys: RedisKeys,
    @Inject(APP_CONFIG) private readonly config: { readonly zego: { readonly appId: number } },
    private readonly limiter: OutboundRateLimiter,
    private readonly policy: RedisDownPolicy,
    private readonly shutdown: GracefulShutdown,
    private readonly mountedFiles: MountedFileWatcher,
  ) {}

  /**
   * A mounted secret file that became unreadable or invalid: the replica still serves with the
   * last good value (degraded, 200), and the details say which file and why, never its content.
   */
  mountedSecrets() {
    const check = this.indicators.check('mountedSecrets');
    const files = Object.fromEntries(
      this.mountedFiles.status().map(({ variable, ...state }) => [variable, state]),
    );
    const stale = Object.values(files).some((file) => file.state === 'stale');
    return stale ? check.degraded({ files }) : check.up({ files });
  }

  lifecycle() {
    const check = this.indicators.check('lifecycle');
    return this.shutdown.shuttingDown ? check.down({ message: 'shutting down' }) : check.up();
  }

  async outboundLimiter() {
    const check = this.indicators.check('outboundLimiter');
    const { mode } = this.limiter;
    if (!this.redis) return check.up({ mode, scope: 'this process only (no Redis configured)' });
    const redis = await this.probeRedis();
    const details = { mode, redis: redis.ok ? 'answers for the vendor budget' : `unreachable: ${redis.reason}` };
    if (redis.ok && mode === 'shared') return check.up(details);
    if (this.policy.fallback === 'local') return check.degraded(details);
    return check.down(details);
  }

  /**
   * Asks the node that holds the vendor budget's keys (on a Cluster, the primary of its slot; a
   * PING could be answered by any node), with a read that changes nothing.
   */
  private async probeRedis(): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      await answerWithin(REDIS_PROBE_TIMEOUT_MS, this.redis!.exists(this.keys.outboundBudget(this.config.zego.appId).slots));
      return { ok: true };
    } catch (error) {
      return { ok: false, reason: describeRedisFailure(error) };
    }
  }
}
