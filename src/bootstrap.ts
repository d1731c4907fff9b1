import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import type { AppOptions } from './app.module.js';
import { ConfigError } from './config/config-error.js';
import { loadConfig, type AppConfig } from './config/app-config.js';

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
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.http.port;
  new Logger('Bootstrap').log(`zim-room-gateway listening on port ${port}`);
}
