import { type DynamicModule, type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import type { AppConfig } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { HttpExceptionFilter } from './http/http-exception.filter.js';
import { JsonBodyMiddleware } from './http/json-body.middleware.js';
import { RequestIdMiddleware } from './http/request-id.middleware.js';
import { requestValidationPipe } from './http/request-validation.pipe.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { RateLimitModule, type OutboundRateLimiterFactory } from './rate-limit/rate-limit.module.js';
import { RedisModule } from './redis/redis.module.js';
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
        RedisModule,
        MetricsModule,
        RateLimitModule.forRoot(options.outboundRateLimiter),
        RoomsModule,
      ],
      providers: [
        { provide: APP_FILTER, useClass: HttpExceptionFilter },
        { provide: APP_PIPE, useFactory: requestValidationPipe },
      ],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(RequestIdMiddleware, JsonBodyMiddleware).forRoutes('{*path}');
  }
}
