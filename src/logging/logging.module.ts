import { Injectable, Module } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module.js';
import { ZegoSecret } from '../zego/zego-secret.js';
import { ZegoModule } from '../zego/zego.module.js';
import { createLogger, type LoggerConfig } from './create-logger.js';
import { PinoLogger } from './pino-logger.js';
import { RefusalLog } from './refusal-log.js';
import { RequestContextRecorder } from './request-context.js';

/** Censors the ServerSecret in effect (it rotates with ZEGO_SERVER_SECRET_FILE) in every line. */
@Injectable()
export class LogSecretsBinding {
  constructor(logger: PinoLogger, secret: ZegoSecret) {
    logger.sanitiser.addSecretSource(() => [secret.current().reveal()]);
  }
}

/**
 * The logger and the request log: one line per request (RequestLogMiddleware, mounted with the
 * other global middleware in AppModule), with what the request did at the vendor
 * (RequestContextRecorder listens to ZimCallEvents). Writes through the same PinoLogger that
 * createApp gave Nest (createLogger returns one instance per configuration).
 */
@Module({
  imports: [ZegoModule],
  providers: [
    { provide: PinoLogger, useFactory: (config: LoggerConfig) => createLogger(config), inject: [APP_CONFIG] },
    RequestContextRecorder,
    LogSecretsBinding,
    RefusalLog,
  ],
  exports: [PinoLogger, RefusalLog],
})
export class LoggingModule {}
