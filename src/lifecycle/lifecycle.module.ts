import { Global, Module } from '@nestjs/common';
import { GracefulShutdown } from './graceful-shutdown.js';
import { InFlightRequests } from './in-flight-requests.js';
import { OverdueRequestWatch } from './overdue-request-watch.js';

/**
 * Graceful shutdown and the requests in flight it waits for, with the watch for those past their
 * deadline; InFlightRequestsMiddleware is mounted with the other global middleware (AppModule).
 */
@Global()
@Module({
  providers: [GracefulShutdown, InFlightRequests, OverdueRequestWatch],
  exports: [GracefulShutdown, InFlightRequests, OverdueRequestWatch],
})
export class LifecycleModule {}
