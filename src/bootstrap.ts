import { createApp } from './app.factory.js';
import type { AppOptions } from './app.module.js';
import { ConfigError } from './config/config-error.js';
import { loadConfig, type AppConfig } from './config/app-config.js';
import { GracefulShutdown } from './lifecycle/graceful-shutdown.js';
import { createLogger } from './logging/create-logger.js';

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
  const server = await app.listen(config.http.port);
  // Our own SIGTERM sequence (readiness, grace, drain, then modules), not Nest's immediate close.
  app.get(GracefulShutdown).installSignalHandlers(app);
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.http.port;
  // Written whatever LOG_LEVEL says: supervisors and tests read the port from this line.
  createLogger(config).notice(`zim-room-gateway listening on port ${port}`, 'Bootstrap');
}
