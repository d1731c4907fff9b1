/**
 * The bare app of bench/bare-nest-app.ts on Nest's other HTTP adapter, @nestjs/platform-fastify:
 * one route, `POST /rooms`, answering 401 at once through Nest's own exception handling, the
 * adapter's default JSON body parser on, no logger. `npm run bench` floods both alike: what the
 * adapter alone changes in a refusal's cost.
 *
 * Started as its own process: PORT (0 picks a free port) and the same "listening on port N" line.
 */
import 'reflect-metadata';
import { Controller, HttpCode, Module, Post, UnauthorizedException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';

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

async function main(): Promise<void> {
  const app = await NestFactory.create<NestFastifyApplication>(BareModule, new FastifyAdapter(), { logger: false });
  await app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  const address = app.getHttpServer().address();
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
