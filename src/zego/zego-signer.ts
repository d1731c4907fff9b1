import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module.js';
import { ZegoSecret } from './zego-secret.js';
import type { ZegoSettings } from './zego.settings.js';

/** The five public query parameters every ZIM server API call carries. */
export interface SignedParams {
  AppId: string;
  SignatureNonce: string;
  Timestamp: string;
  SignatureVersion: '2.0';
  Signature: string;
}

/**
 * SignatureVersion 2.0: md5(AppId + SignatureNonce + ServerSecret + Timestamp) as lowercase hex.
 * The only class besides the configuration (and the rotation holder it reads) that touches the
 * ServerSecret; it reads the holder on every call, so a rotated secret applies to the next one.
 */
@Injectable()
export class ZegoSigner {
  constructor(
    @Inject(APP_CONFIG) private readonly config: { readonly zego: ZegoSettings },
    private readonly secret: ZegoSecret,
  ) {}

  /** Fresh nonce and timestamp for every call: the vendor rejects replays outside its window. */
  sign(now: Date = new Date()): SignedParams {
    const appId = String(this.config.zego.appId);
    const nonce = randomBytes(8).toString('hex');
    const timestamp = String(Math.floor(now.getTime() / 1000));
    return {
      AppId: appId,
      SignatureNonce: nonce,
      Timestamp: timestamp,
      SignatureVersion: '2.0',
      Signature: ZegoSigner.signature(appId, nonce, this.secret.current().reveal(), timestamp),
    };
  }

  static signature(appId: string, nonce: string, secret: string, timestamp: string): string {
    return createHash('md5').update(appId + nonce + secret + timestamp, 'utf8').digest('hex');
  }
}
