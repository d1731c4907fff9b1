import type { DestinationStream } from 'pino';
import type { LoggerConfig } from '../../src/logging/create-logger.js';
import type { LogLevel } from '../../src/logging/logging.settings.js';
import { Secret } from '../../src/config/secret.js';

/** For the logging specs: a destination keeping every line, parsed. */
export class MemoryDestination implements DestinationStream {
  readonly raw: string[] = [];

  write(chunk: string): void {
    this.raw.push(chunk);
  }

  get lines(): Record<string, unknown>[] {
    return this.raw.map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  get text(): string {
    return this.raw.join('');
  }
}

/** Just enough configuration for createLogger. */
export function loggingConfig(level: LogLevel, secret: string): LoggerConfig {
  return { logging: { level, refusals: 'sampled' }, zego: { serverSecret: new Secret(secret) } };
}
