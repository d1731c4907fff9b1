import { Global, type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { GracefulShutdown } from './graceful-shutdown.js';
import { InFlightRequests, InFlightRequestsMiddleware } from './in-flight-requests.js';

@Global()
@Module({
  providers: [GracefulShutdown, InFlightRequests],
  exports: [GracefulShutdown],
})
export class LifecycleModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(InFlightRequestsMiddleware).forRoutes('{*path}');
  }
}
