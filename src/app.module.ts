import { type DynamicModule, type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import type { AppConfig } from './app-config.js';
import { ConfigModule } from './config/config.module.js';
import { HealthModule } from './health/health.module.js';
import { HttpExceptionFilter } from './http/http-exception.filter.js';
import { JsonBodyMiddleware } from './http/json-body.middleware.js';
import { RequestIdMiddleware } from './http/request-id.middleware.js';
import { requestValidationPipe } from './http/request-validation.pipe.js';
import { InFlightRequestsMiddleware } from './lifecycle/in-flight-requests.js';
import { LifecycleModule } from './lifecycle/lifecycle.module.js';
import { LoggingModule } from './logging/logging.module.js';
import { RequestLogMiddleware } from './logging/request-log.middleware.js';
import { HttpMetricsMiddleware } from './metrics/http-metrics.middleware.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { RateLimitModule, type OutboundRateLimiterFactory } from './rate-limit/rate-limit.module.js';
import { RedisModule } from './redis/redis.module.js';
import { RoomBatchesModule } from './rooms/batches/room-batches.module.js';
import { RoomsModule } from './rooms/rooms.module.js';

export interface AppOptions {
  /** Replaces the outbound limiter (the benchmark runs a fixed-window baseline through it). */
  outboundRateLimiter?: OutboundRateLimiterFactory;
}

@Module({})
export class AppModule implements NestModule {
  static forRoot(config: AppConfig, options: AppOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LifecycleModule,
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
        { provide: APP_PIPE, useFactory: requestValidationPipe },
      ],
    };
  }

  /**
   * Every request passes the global middleware once, in this order (the README's request path):
   * counted as in flight (shutdown waits for it, the overdue watch looks at it) and given its
   * deadline from its arrival, given its id, logged and measured when it ends, and its body parsed
   * (complaints deferred to JsonBodyGuard, after authentication).
   */
  configure(consumer: MiddlewareConsumer): void {
    consumer
      .apply(InFlightRequestsMiddleware, RequestIdMiddleware, RequestLogMiddleware, HttpMetricsMiddleware, JsonBodyMiddleware)
      .forRoutes('{*path}');
  }
}
