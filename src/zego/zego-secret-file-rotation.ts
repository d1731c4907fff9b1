import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module.js';
import { MountedFileWatcher, sha256 } from '../config/mounted-file-watcher.js';
import { Secret } from '../config/secret.js';
import { ZegoSecret } from './zego-secret.js';
import type { ZegoSettings } from './zego.settings.js';

/**
 * Registers ZEGO_SERVER_SECRET_FILE, when the secret came from one, with the watcher: a changed
 * secret signs the next vendor call.
 */
@Injectable()
export class ZegoSecretFileRotation {
  constructor(
    @Inject(APP_CONFIG) config: { readonly zego: ZegoSettings },
    secret: ZegoSecret,
    watcher: MountedFileWatcher,
  ) {
    const file = config.zego.serverSecretFile;
    if (file === undefined) return;
    watcher.watch<Secret>({
      variable: 'ZEGO_SERVER_SECRET_FILE',
      file,
      applied: sha256(config.zego.serverSecret.reveal()),
      parse: (text) => ({ value: new Secret(text), fingerprint: sha256(text) }),
      apply: (value) => secret.replace(value),
    });
  }
}
