import { Module } from '@nestjs/common';
import { VendorConnectionPool } from './connection-pool/vendor-connection-pool.js';
import { vendorConnectionPoolProvider } from './connection-pool/vendor-connection-pool.provider.js';
import { ZegoSecret } from './zego-secret.js';
import { ZegoSecretFileRotation } from './zego-secret-file-rotation.js';
import { ZegoSigner } from './zego-signer.js';
import { ZimCallEvents } from './zim-call-events.js';
import { ZimClient } from './zim-client.js';

@Module({
  providers: [ZegoSecret, ZegoSecretFileRotation, ZegoSigner, vendorConnectionPoolProvider, ZimClient, ZimCallEvents],
  exports: [ZimClient, ZimCallEvents, ZegoSecret, VendorConnectionPool],
})
export class ZegoModule {}
