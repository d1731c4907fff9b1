import type { FactoryProvider } from '@nestjs/common';
import { APP_CONFIG } from '../../config/config.module.js';
import type { OutboundSettings } from '../../rate-limit/rate-limit.settings.js';
import { VendorConnectionPool } from './vendor-connection-pool.js';
import { ZimCallEvents } from '../zim-call-events.js';
import type { ZegoSettings } from '../zego.settings.js';

type PoolConfig = { readonly zego: ZegoSettings; readonly outbound: OutboundSettings };

/** The pool of one process, sized for the fleet's whole budget (one replica may be given all of it), its measurements reported as events. */
export function createVendorConnectionPool(config: PoolConfig, events: ZimCallEvents): VendorConnectionPool {
  return new VendorConnectionPool({
    baseUrl: config.zego.apiBaseUrl,
    keepAliveIdleMs: config.zego.keepAliveIdleMs,
    warm: config.zego.warmConnections,
    budgetPerSecond: (config.outbound.qpsLimit * 1000) / config.outbound.windowMs,
    safetyMarginMs: config.outbound.safetyMarginMs,
    observer: {
      connected: (ms, when) => events.transport({ kind: 'connected', ms, when }),
      wired: (ms) => events.transport({ kind: 'wired', ms }),
      answered: (ms) => events.transport({ kind: 'answered', ms }),
    },
  });
}

export const vendorConnectionPoolProvider: FactoryProvider<VendorConnectionPool> = {
  provide: VendorConnectionPool,
  inject: [APP_CONFIG, ZimCallEvents],
  useFactory: createVendorConnectionPool,
};
