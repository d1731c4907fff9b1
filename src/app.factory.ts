import type { INestApplication } from '@nestjs/common';
import { INJECTABLE_WATERMARK } from '@nestjs/common/constants.js';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { useContainer } from 'class-validator';
import express from 'express';
import { AppModule, type AppOptions } from './app.module.js';
import type { AppConfig } from './app-config.js';
import { mountGlobalMiddleware } from './global-middleware.js';
import { createLogger } from './logging/create-logger.js';
import { setUpOpenApi } from './openapi.js';

/** Builds the application without listening: bootstrap.ts sets the HTTP timeouts first, then listens. */
export async function createApp(config: AppConfig, options: AppOptions = {}): Promise<INestApplication> {
  const appModule = AppModule.forRoot(config, options);
  const app = await NestFactory.create<NestExpressApplication>(appModule, new ExpressAdapter(strictExpress()), {
    // JsonBodyGuard reads bodies, once the caller is authenticated, with our limits.
    bodyParser: false,
    // One JSON object per line (pino), sanitised, at LOG_LEVEL; never colour codes.
    logger: createLogger(config),
    // Start-up failures reach main.ts as exceptions instead of aborting the process.
    abortOnError: false,
  });
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  // Before any route, Swagger's included: every answer passes the global middleware.
  mountGlobalMiddleware(app);
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

/**
 * An Express application that matches paths exactly: /ROOMS and /rooms/ are not /rooms (404),
 * so one resource has one URL in the logs, the metrics and the clients. Express reads both
 * settings once, when it creates its router, which ExpressAdapter's constructor already does.
 */
function strictExpress(): express.Express {
  const instance = express();
  instance.enable('case sensitive routing');
  instance.enable('strict routing');
  return instance;
}
