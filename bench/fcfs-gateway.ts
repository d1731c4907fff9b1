/**
 * The gateway with the first-come-first-served outbound limiter (bench/fcfs/, kept as it was
 * before the fair scheduler) in place of the one it is built with: the baseline of
 * `npm run bench:fairness` and of the FCFS rows of `npm run bench`. The same application,
 * configuration and traffic; only the outbound limiter differs, wired as RateLimitModule wired it.
 * Its Redis keys are its own (`<REDIS_KEY_PREFIX>:{fcfs-outbound:<AppId>}:...`), so it never reads
 * the log of another limiter sharing the Redis.
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { bootstrap } from '../src/bootstrap.js';
import { FailoverOutboundRateLimiter } from './fcfs/failover-outbound-rate-limiter.js';
import { LocalOutboundRateLimiter } from './fcfs/local-outbound-rate-limiter.js';
import { handoverRules, localShareRules, outboundRules } from './fcfs/outbound-rules.js';
import { RedisOutboundRateLimiter } from './fcfs/redis-outbound-rate-limiter.js';

/** REDIS_KEY_PREFIX as the gateway reads it (validated there). */
const keyPrefix = process.env.REDIS_KEY_PREFIX?.trim() || 'zim-room-gateway';

void bootstrap({
  outboundRateLimiter: ({ config, redis, policy }) => {
    const logger = new Logger('OutboundRateLimiter');
    const rules = outboundRules(config);
    if (!redis) {
      logger.warn('No Redis is configured: the first-come-first-served baseline runs in process, for one replica only');
      return new LocalOutboundRateLimiter(rules);
    }
    const budget = `${keyPrefix}:{fcfs-outbound:${config.zego.appId}}`;
    logger.log(`Outbound limiter: the first-come-first-served baseline, shared through Redis (${rules.limit} per ${rules.windowMs} ms)`);
    const shared = new RedisOutboundRateLimiter(
      redis,
      { slots: `${budget}:slots`, handover: `${budget}:slots:handover` },
      { ...rules, handover: handoverRules(config) },
    );
    return new FailoverOutboundRateLimiter(shared, new LocalOutboundRateLimiter(localShareRules(config)), policy, logger);
  },
});
