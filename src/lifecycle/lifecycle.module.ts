import { Global, Module } from '@nestjs/common';
import { GracefulShutdown } from './graceful-shutdown.js';
import { InFlightRequests } from './in-flight-requests.js';

/** Graceful shutdown; InFlightRequestsMiddleware is mounted with the other global middleware (AppModule). */
@Global()
@Module({
  providers: [GracefulShutdown, InFlightRequests],
  exports: [GracefulShutdown, InFlightRequests],
})
export class LifecycleModule {}
