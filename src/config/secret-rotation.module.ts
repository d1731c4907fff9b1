import { Global, Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { ZegoModule } from '../zego/zego.module.js';
import { MountedSecretsWatcher } from './mounted-secrets.js';

/**
 * Reloads ZEGO_SERVER_SECRET_FILE and API_KEYS_FILE when their content changes (see
 * MountedSecretsWatcher). Global, so the readiness endpoint can inject the watcher for status().
 * AuthModule and ZegoModule are singletons: the ApiKeyStore and ZegoSecret updated here are the
 * ones the guard and the signer use.
 */
@Global()
@Module({
  imports: [AuthModule, ZegoModule],
  providers: [MountedSecretsWatcher],
  exports: [MountedSecretsWatcher],
})
export class SecretRotationModule {}
