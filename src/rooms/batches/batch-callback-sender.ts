import { createHmac } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import axios, { type AxiosInstance } from 'axios';
import { APP_CONFIG } from '../../config/config.module.js';
import { BATCH_STORE, type BatchStore } from './batch-store.js';
import type { BatchSettings } from './batches.settings.js';
import type { BatchSummary } from './room-batch.js';

/** What the callback POSTs: the batch without its rooms, and where to read them. */
export interface BatchCallbackBody extends BatchSummary {
  /** GET this (with the client's key) for the rooms. */
  location: string;
}

export const SIGNATURE_HEADER = 'X-Signature';

/** Waits between callback attempts: doubling from a second, at most five minutes apart. */
export function callbackRetryDelayMs(attemptsMade: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attemptsMade - 1), 300_000);
}

/** Callbacks are tried again until this long after the batch ended. */
export const CALLBACK_RETRY_FOR_MS = 3_600_000;

/** `sha256=<hex HMAC-SHA256 of the body>` under the secret: what the receiver recomputes. */
export function callbackSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** Hosts (with a port when the list names one) a callbackUrl may point at: BATCH_CALLBACK_HOSTS. */
export function callbackAllowed(url: URL, hosts: readonly string[]): boolean {
  const host = url.hostname.toLowerCase();
  const withPort = `${host}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
  return hosts.some((allowed) => allowed === host || allowed === withPort);
}

/**
 * Sends one batch's callback: the final batch, signed, to its callbackUrl, which is checked against
 * the allow-list again (the list may have changed since submission). Redirects are not followed: a
 * receiver cannot send the gateway on to a host nobody allowed. Throws when the receiver did not
 * take it (no 2xx), for the delivery's retries.
 */
@Injectable()
export class BatchCallbackSender {
  private readonly http: AxiosInstance;

  constructor(
    @Inject(APP_CONFIG) private readonly config: { readonly batches: BatchSettings },
    @Inject(BATCH_STORE) private readonly store: BatchStore,
  ) {
    this.http = axios.create({ timeout: 10_000, maxRedirects: 0, validateStatus: () => true, responseType: 'text' });
  }

  /** `gone`: nothing to send (no callbackUrl, the batch expired, or its host is no longer allowed). */
  async deliver(client: string, batchId: string): Promise<'sent' | 'gone'> {
    const { callbackSecret, callbackHosts } = this.config.batches;
    const delivery = await this.store.delivery(client, batchId);
    const summary = await this.store.summary(client, batchId);
    if (!delivery?.callbackUrl || !summary || !callbackSecret) return 'gone';
    const url = new URL(delivery.callbackUrl);
    if (!callbackAllowed(url, callbackHosts)) return 'gone';
    const body = JSON.stringify({ ...summary, location: `/rooms/batches/${batchId}` } satisfies BatchCallbackBody);
    const response = await this.http.post(url.toString(), body, {
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': 'zim-room-gateway',
        'X-Request-Id': delivery.requestId,
        [SIGNATURE_HEADER]: callbackSignature(callbackSecret.reveal(), body),
      },
    });
    if (response.status < 200 || response.status >= 300) {
      throw new Error(`the callback receiver answered ${response.status}`);
    }
    return 'sent';
  }
}
