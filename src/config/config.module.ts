import { Global, Module, type DynamicModule } from '@nestjs/common';
import { MountedFileWatcher } from './mounted-file-watcher.js';

/**
 * Injection token for the typed, frozen configuration. Each provider types it as the sections it
 * reads (`{ zego: ZegoSettings }`), so its dependencies show in its constructor.
 */
export const APP_CONFIG = Symbol('APP_CONFIG');

/**
 * Provides the configuration that main.ts loaded and validated before Nest started, so a bad
 * environment stops the process with a readable message instead of a DI stack trace; and the one
 * watcher of mounted files, with which owners register the files they reload.
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: object): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: APP_CONFIG, useValue: config }, MountedFileWatcher],
      exports: [APP_CONFIG, MountedFileWatcher],
    };
  }
}
