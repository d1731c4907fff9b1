import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { ConfigError } from './config/config-error.js';
import { loadConfig, type AppConfig } from './config/app-config.js';

async function bootstrap(): Promise<void> {
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
  const app = await createApp(config);
  const server = await app.listen(config.http.port);
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.http.port;
  new Logger('Bootstrap').log(`zim-room-gateway listening on port ${port}`);
}

void bootstrap();
