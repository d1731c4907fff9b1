import { Module } from '@nestjs/common';
import { ApiKeyGuard } from './api-key.guard.js';
import { ApiKeyStore } from './api-key-store.js';
import { ApiKeysFileRotation } from './api-keys-file-rotation.js';

@Module({
  providers: [ApiKeyStore, ApiKeyGuard, ApiKeysFileRotation],
  exports: [ApiKeyStore, ApiKeyGuard],
})
export class AuthModule {}
