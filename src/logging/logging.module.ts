import { Injectable, type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ZegoSecret } from '../zego/zego-secret.js';
import { ZegoModule } from '../zego/zego.module.js';
import { createLogger } from './create-logger.js';
import { PinoLogger } from './pino-logger.js';
import { RequestContextRecorder } from './request-context.js';
import { RequestLogMiddleware } from './request-log.middleware.js';

/** Censors the ServerSecret in effect (it rotates with ZEGO_SERVER_SECRET_FILE) in every line. */
@Injectable()
export class LogSecretsBinding {
  constructor(logger: PinoLogger, secret: ZegoSecret) {
    logger.sanitiser.addSecretSource(() => [secret.current().reveal()]);
  }
}

/**
 * The request log: one line per request (RequestLogMiddleware, on every route), with what the
 * request did at the vendor (RequestContextRecorder listens to ZimCallEvents). Writes through the
 * same PinoLogger that createApp gave Nest (createLogger returns one instance per configuration).
 */
@Module({
  imports: [ZegoModule],
  providers: [
    { provide: PinoLogger, useFactory: (config: AppConfig) => createLogger(config), inject: [APP_CONFIG] },
    RequestContextRecorder,
    LogSecretsBinding,
  ],
  exports: [PinoLogger],
})
export class LoggingModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(RequestLogMiddleware).forRoutes('{*path}');
  }
}
