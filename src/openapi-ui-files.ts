import { createRequire } from 'node:module';
import path from 'node:path';
import { type INestApplication, NotFoundException } from '@nestjs/common';
import type { Express, NextFunction, Request, Response } from 'express';

/** The files of swagger-ui-dist the page at GET /docs loads (its stylesheet, scripts and icons). */
const UI_FILES = [
  'swagger-ui.css',
  'swagger-ui-bundle.js',
  'swagger-ui-standalone-preset.js',
  'favicon-32x32.png',
  'favicon-16x16.png',
];

/**
 * GET /docs serves its page, its init script and the files the page loads, and nothing else:
 * Swagger serves the whole of swagger-ui-dist under /docs (its package.json, README, source
 * maps). Registered before Swagger's routes. Each file gets a route of its own, so logs and
 * metrics name it; anything else under /docs is a 404 in the one error shape.
 */
export function serveOnlyWhatTheUiLoads(app: INestApplication, docsPath: string): void {
  const root = swaggerUiDistDirectory();
  const express = app.getHttpAdapter().getInstance() as Express;
  for (const file of UI_FILES) {
    express.get(`/${docsPath}/${file}`, (_request: Request, response: Response, next: NextFunction) => {
      response.sendFile(file, { root }, (error?: Error) => {
        // Once the file is on its way only the client can end it early: nothing left to answer.
        if (error && !response.headersSent) next(error);
      });
    });
  }
  // What Swagger's own routes answer under /docs that the UI needs: the page and its init script.
  const swaggerRoutesServed = new Set([`/${docsPath}`, `/${docsPath}/swagger-ui-init.js`]);
  app.use(`/${docsPath}`, (request: Request, _response: Response, next: NextFunction) => {
    const pathname = request.originalUrl.split('?')[0]!;
    if (swaggerRoutesServed.has(pathname)) next();
    else next(new NotFoundException());
  });
}

/** The swagger-ui-dist that @nestjs/swagger itself serves and writes its page for (its dependency, not ours). */
function swaggerUiDistDirectory(): string {
  const swaggerRequire = createRequire(createRequire(import.meta.url).resolve('@nestjs/swagger'));
  return path.dirname(swaggerRequire.resolve('swagger-ui-dist/package.json'));
}
