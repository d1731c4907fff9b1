import { type DynamicModule, type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import type { AppConfig } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { HttpExceptionFilter } from './http/http-exception.filter.js';
import { JsonBodyMiddleware } from './http/json-body.middleware.js';
import { RequestIdMiddleware } from './http/request-id.middleware.js';
import { requestValidationPipe } from './http/request-validation.pipe.js';
import { RateLimitModule } from './rate-limit/rate-limit.module.js';
import { RoomsModule } from './rooms/rooms.module.js';

@Module({})
export class AppModule implements NestModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), RateLimitModule, RoomsModule],
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
