import type { INestApplication } from '@nestjs/common';
import { INJECTABLE_WATERMARK } from '@nestjs/common/constants.js';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { useContainer } from 'class-validator';
import { AppModule, type AppOptions } from './app.module.js';
import type { AppConfig } from './app-config.js';
import { createLogger } from './logging/create-logger.js';
import { setUpOpenApi } from './openapi.js';

/** Builds the application without listening: bootstrap.ts sets the HTTP timeouts first, then listens. */
export async function createApp(config: AppConfig, options: AppOptions = {}): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, options), {
    // JsonBodyMiddleware parses bodies, after the request id is set and with our limits.
    bodyParser: false,
    // One JSON object per line (pino), sanitised, at LOG_LEVEL; never colour codes.
    logger: createLogger(config),
    // Start-up failures reach main.ts as exceptions instead of aborting the process.
    abortOnError: false,
  });
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  // Constraints registered as Nest providers (they read configuration) come from Nest's
  // container; class-validator's built-in ones from its own.
  useContainer(
    {
      get: <T>(type: new (...args: never[]) => T): T | undefined =>
        Reflect.getMetadata(INJECTABLE_WATERMARK, type) === true
          ? app.get(type, { strict: false })
          : undefined,
    },
    { fallback: true },
  );
  setUpOpenApi(app);
  return app;
}
