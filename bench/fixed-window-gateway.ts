/**
 * The gateway with the baseline limiter in place of ours, for `npm run bench:limiter`: the same
 * application, configuration and traffic, only the outbound limiter differs.
 */
import 'reflect-metadata';
import { bootstrap } from '../src/bootstrap.js';
import { FixedWindowOutboundRateLimiter } from './fixed-window-outbound-rate-limiter.js';

void bootstrap({
  outboundRateLimiter: ({ config, redis }) => {
    if (!redis) throw new Error('the fixed-window baseline needs REDIS_URL');
    const { qpsLimit, windowMs } = config.outbound;
    return new FixedWindowOutboundRateLimiter(redis, `outbound-${config.zego.appId}`, qpsLimit, windowMs);
  },
});
