/**
 * The baseline of `npm run bench`: the smallest NestJS application on the same HTTP adapter
 * (platform-express) and the same Nest version as the gateway. One route, `POST /rooms`, that
 * answers 401 at once through Nest's own exception handling, with a small JSON body. Nest's
 * default JSON body parser stays on (a real app parses bodies), its logger is off (nothing is
 * logged per request), and nothing else is registered: no guards, pipes, middleware, metrics.
 *
 * BARE_ADAPTER=fastify runs the same app on @nestjs/platform-fastify instead (its default JSON
 * body parser on): what the other adapter alone changes in a refusal's cost.
 *
 * Started as its own process like the gateway: PORT (0 picks a free port) and the same
 * "listening on port N" line.
 */
import 'reflect-metadata';
import type { Server } from 'node:http';
import { Controller, HttpCode, type INestApplication, Module, Post, UnauthorizedException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';

@Controller('rooms')
class BareRoomsController {
  @Post()
  @HttpCode(201)
  create(): never {
    throw new UnauthorizedException('missing or unknown API key');
  }
}

@Module({ controllers: [BareRoomsController] })
class BareModule {}

async function createApp(): Promise<INestApplication> {
  if (process.env.BARE_ADAPTER === 'fastify') return NestFactory.create(BareModule, new FastifyAdapter(), { logger: false });
  const app = await NestFactory.create<NestExpressApplication>(BareModule, { logger: false });
  app.disable('x-powered-by');
  return app;
}

async function main(): Promise<void> {
  const app = await createApp();
  await app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  const address = (app.getHttpServer() as Server).address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const stop = (): void => {
    void app.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Printed once the handlers are set: a launcher that reads it may stop the app at once.
  process.stdout.write(`bare nest app listening on port ${port}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
