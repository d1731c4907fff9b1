import { Module } from '@nestjs/common';
import { ZegoSecret } from './zego-secret.js';
import { ZegoSecretFileRotation } from './zego-secret-file-rotation.js';
import { ZegoSigner } from './zego-signer.js';
import { ZimCallEvents } from './zim-call-events.js';
import { ZimClient } from './zim-client.js';

@Module({
  providers: [ZegoSecret, ZegoSecretFileRotation, ZegoSigner, ZimClient, ZimCallEvents],
  exports: [ZimClient, ZimCallEvents, ZegoSecret],
})
export class ZegoModule {}
