import { Module } from '@nestjs/common';
import { ZegoSigner } from './zego-signer.js';
import { ZimClient } from './zim-client.js';

@Module({
  providers: [ZegoSigner, ZimClient],
  exports: [ZimClient],
})
export class ZegoModule {}
