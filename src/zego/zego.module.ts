import { Module } from '@nestjs/common';
import { ZegoSecret } from './zego-secret.js';
import { ZegoSigner } from './zego-signer.js';
import { ZimCallEvents } from './zim-call-events.js';
import { ZimClient } from './zim-client.js';

@Module({
  providers: [ZegoSecret, ZegoSigner, ZimClient, ZimCallEvents],
  exports: [ZimClient, ZimCallEvents, ZegoSecret],
})
export class ZegoModule {}
