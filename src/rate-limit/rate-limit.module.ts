import { Global, Logger, Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { LocalOutboundRateLimiter } from './local-outbound-rate-limiter.js';
import { OutboundRateLimiter } from './outbound-rate-limiter.js';

@Global()
@Module({
  providers: [
    {
      provide: OutboundRateLimiter,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): OutboundRateLimiter => {
        new Logger('OutboundRateLimiter').warn(
          'Outbound limiter runs in process: safe for one replica only',
        );
        const { qpsLimit, windowMs, safetyMarginMs } = config.outbound;
        return new LocalOutboundRateLimiter({ limit: qpsLimit, windowMs, safetyMarginMs });
      },
    },
  ],
  exports: [OutboundRateLimiter],
})
export class RateLimitModule {}
