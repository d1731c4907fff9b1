import type { Server } from 'node:http';
import { Registry } from 'prom-client';
import { createApp } from './app.factory.js';
import type { AppOptions } from './app.module.js';
import { loadConfig, type AppConfig } from './app-config.js';
import { ConfigError } from './config/config-error.js';
import { capConnections } from './http/connection-cap.js';
import type { HttpSettings } from './http/http.settings.js';
import { GracefulShutdown } from './lifecycle/graceful-shutdown.js';
import { createLogger } from './logging/create-logger.js';
import { registerHttpConnectionMetrics } from './metrics/http-connections.metrics.js';
import { tracingRunning } from './tracing/running-tracing.js';

/** Loads the configuration from the environment, starts the gateway and logs its port. */
export async function bootstrap(options: AppOptions = {}): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG: a restart will not help until the environment is fixed
    }
    throw error;
  }
  const app = await createApp(config, options);
  const httpServer = app.getHttpServer() as Server;
  // Before listen(): Node starts its timeout checker, at the interval set here, on 'listening'.
  applyHttpTimeouts(httpServer, config.http);
  capConnections(httpServer, config.http.maxConnections, registerHttpConnectionMetrics(app.get(Registry), httpServer));
  await app.listen(config.http.port);
  // Our own SIGTERM sequence (readiness, grace, drain, then modules), not Nest's immediate close.
  app.get(GracefulShutdown).installSignalHandlers(app);
  const address = httpServer.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.http.port;
  // Written whatever LOG_LEVEL says: supervisors and tests read the port from this line.
  createLogger(config).notice(`zim-room-gateway listening on port ${port}`, 'Bootstrap');
  if (config.tracing.enabled && !tracingRunning()) {
    createLogger(config).warn(
      'An OTLP endpoint is set but tracing is not running: start the gateway with `node --import ./dist/tracing/preload.js dist/main.js` (npm start)',
      'Bootstrap',
    );
  }
}

/**
 * Keeps slow or stalled clients from holding sockets (slow-loris): headers must arrive within
 * HTTP_HEADERS_TIMEOUT_MS and the whole request within HTTP_REQUEST_TIMEOUT_MS, else Node answers
 * 408 and closes the connection. Both cover receiving the request only, not the vendor call.
 * Node checks them on a timer (30 s by default, read once at listen()): a tighter one makes the
 * cut-off land within a quarter of the headers timeout (at most 1 s) after it expires.
 * Idle keep-alive connections stay open HTTP_KEEP_ALIVE_TIMEOUT_MS (65 s by default, longer than
 * the 60 s idle timeout of common load balancers and proxies: ingress-nginx upstream keep-alive,
 * AWS ALB), so the peer closes an idle connection first and never sends a request on one the
 * gateway is closing (a 502/reset).
 */
function applyHttpTimeouts(server: Server, http: HttpSettings): void {
  server.headersTimeout = http.headersTimeoutMs;
  server.requestTimeout = http.requestTimeoutMs;
  server.keepAliveTimeout = http.keepAliveTimeoutMs;
  // A public property of http.Server that @types/node only knows as a createServer() option.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.min(
    1000,
    Math.ceil(http.headersTimeoutMs / 4),
  );
}
