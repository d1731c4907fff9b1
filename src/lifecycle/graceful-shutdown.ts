import type { Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger, type INestApplication } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module.js';
import type { HttpSettings } from '../http/http.settings.js';
import { shutDownTracing } from '../tracing/running-tracing.js';
import { InFlightRequests } from './in-flight-requests.js';

/**
 * SIGTERM the way Kubernetes needs it. Readiness fails at once, so the endpoints stop routing
 * here; for SHUTDOWN_GRACE_MS the gateway still serves what arrives while that spreads; then the
 * listener closes (new connections are refused), requests in flight, including those waiting for
 * a limiter slot, finish, and only then do the modules stop (vendor connections, Redis), the
 * spans still queued go out (tracing on, at most 2 s) and the process exits 0.
 */
@Injectable()
export class GracefulShutdown {
  private readonly logger = new Logger(GracefulShutdown.name);
  private started = false;
  private readonly startListeners: (() => Promise<void>)[] = [];

  constructor(
    @Inject(APP_CONFIG)
    private readonly config: {
      readonly http: HttpSettings;
      /** ZEGO_CALL_DEADLINE_MS: the longest a request in flight may take from its arrival. */
      readonly zego: { readonly callDeadlineMs: number };
    },
    private readonly inFlight: InFlightRequests,
  ) {}

  /** True from the first shutdown signal on: readiness answers 503. */
  get shuttingDown(): boolean {
    return this.started;
  }

  /**
   * Work that must stop at the first signal rather than when the modules stop: background work
   * (batch rooms) stops taking more and hands back what it cannot finish, within the grace period.
   */
  onShutdownStart(listener: () => Promise<void>): void {
    this.startListeners.push(listener);
  }

  /** Handles SIGTERM and SIGINT for this application; call once, after listen(). */
  installSignalHandlers(app: INestApplication): void {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        this.run(app, signal).then(
          () => process.exit(0),
          (error: unknown) => {
            this.logger.error(`Shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
            process.exit(1);
          },
        );
      });
    }
  }

  async run(app: INestApplication, reason: string): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { shutdownGraceMs } = this.config.http;
    this.logger.log(`${reason}: readiness now fails; the listener closes in ${shutdownGraceMs} ms`);
    const stopped = Promise.allSettled(this.startListeners.map((listener) => listener()));
    await Promise.all([sleep(shutdownGraceMs), stopped]);

    const server = app.getHttpServer() as Server;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // The longest a request can still take: its deadline runs from its arrival and covers all of
    // it (limiter waits, vendor calls, retries); the overdue watch names any that outlives it.
    const deadline = this.config.zego.callDeadlineMs + 1000;
    const startedAt = performance.now();
    const pending = this.inFlight.count;
    const drained = await this.inFlight.drained(deadline);
    this.logger.log(
      drained
        ? `Listener closed; ${pending} requests in flight finished in ${Math.round(performance.now() - startedAt)} ms`
        : `Listener closed; ${this.inFlight.count} requests still unfinished after ${deadline} ms are cut off`,
    );
    server.closeAllConnections();
    await closed;
    await app.close();
    // Last: the spans of the requests just drained and of the modules stopping still go out.
    await shutDownTracing();
    this.logger.log('Stopped');
  }
}
