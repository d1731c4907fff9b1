import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module.js';
import type { Secret } from '../config/secret.js';
import type { ZegoSettings } from './zego.settings.js';

/**
 * The ServerSecret currently in effect. Starts with the configured one; `replace()` swaps it at
 * once (rotation of a mounted ZEGO_SERVER_SECRET_FILE), and the signer reads it on every call.
 */
@Injectable()
export class ZegoSecret {
  private secret: Secret;

  constructor(@Inject(APP_CONFIG) config: { readonly zego: ZegoSettings }) {
    this.secret = config.zego.serverSecret;
  }

  current(): Secret {
    return this.secret;
  }

  replace(secret: Secret): void {
    this.secret = secret;
  }
}
