import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import type { AppConfig } from './app-config.js';
import { ConfigModule } from './config/config.module.js';
import { GLOBAL_MIDDLEWARE } from './global-middleware.js';
import { HealthModule } from './health/health.module.js';
import { HttpExceptionFilter } from './http/http-exception.filter.js';
import { RequestBodyModule } from './http/request-body.module.js';
import { requestValidationPipe } from './http/request-validation.pipe.js';
import { LifecycleModule } from './lifecycle/lifecycle.module.js';
import { LoggingModule } from './logging/logging.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { RateLimitModule, type OutboundRateLimiterFactory } from './rate-limit/rate-limit.module.js';
import { RedisModule } from './redis/redis.module.js';
import { RoomBatchesModule } from './rooms/batches/room-batches.module.js';
import { RoomsModule } from './rooms/rooms.module.js';
import { TracedValidationPipe } from './tracing/traced-validation-pipe.js';

export interface AppOptions {
  /** Replaces the outbound limiter (the benchmark runs a fixed-window baseline through it). */
  outboundRateLimiter?: OutboundRateLimiterFactory;
}

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, options: AppOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LifecycleModule,
        RequestBodyModule,
        RedisModule,
        MetricsModule,
        HealthModule,
        RateLimitModule.forRoot(options.outboundRateLimiter),
        RoomsModule,
        RoomBatchesModule.forRoot(config.redis),
        LoggingModule,
      ],
      providers: [
        { provide: APP_FILTER, useClass: HttpExceptionFilter },
        { provide: APP_PIPE, useFactory: () => new TracedValidationPipe(requestValidationPipe()) },
        // The global middleware, in its one order: createApp mounts these instances on Express
        // before any route (global-middleware.ts), so it also passes what Nest's routing never sees.
        ...GLOBAL_MIDDLEWARE,
      ],
    };
  }
}
