import { STATUS_CODES } from 'node:http';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Level, Logger } from 'pino';
import { APP_CONFIG } from '../config/config.module.js';
import type { LoggingSettings } from './logging.settings.js';
import { PinoLogger } from './pino-logger.js';
import { RefusalLogSampler, type RefusalKind, type RefusalSummary } from './refusal-log-sampler.js';

export const REFUSAL_SUMMARY_CONTEXT = 'RefusalSummary';

/** What the request log knows of an answered request when it picks the line's level. */
export interface AnsweredRequest {
  status: number;
  client?: string;
  /** Why it was refused, as the exception filter recorded it. */
  reason?: string;
  /** Whether any call reached for the vendor on its behalf. */
  reachedVendor: boolean;
}

/**
 * Which request lines a refusal storm writes (LOG_REFUSALS): a refusal is a 4xx that never
 * reached the vendor. Sampled, the first of a kind per second gets its full line and the others
 * one `RefusalSummary` line with their count; every request that reached the vendor and every
 * 5xx keeps its own line, and the metrics count every request either way.
 */
@Injectable()
export class RefusalLog implements OnApplicationShutdown {
  private readonly sampler: RefusalLogSampler | undefined;

  constructor(@Inject(APP_CONFIG) config: { readonly logging: LoggingSettings }, logger: PinoLogger) {
    const summaries = logger.pino.child({ context: REFUSAL_SUMMARY_CONTEXT });
    this.sampler =
      config.logging.refusals === 'sampled' ? new RefusalLogSampler((summary) => writeSummary(summaries, summary)) : undefined;
  }

  /** The level of a request's line: `level` as decided, or 'silent' for a refusal another line already stands for. */
  lineLevel(request: AnsweredRequest, level: Level): Level | 'silent' {
    if (!this.sampler || !isRefusal(request)) return level;
    const kind: RefusalKind = {
      client: request.client,
      status: request.status,
      reason: request.reason ?? STATUS_CODES[request.status] ?? 'Error',
    };
    return this.sampler.takeLine(kind) ? level : 'silent';
  }

  /** The counts of the interval in progress are written, not lost. */
  onApplicationShutdown(): void {
    this.sampler?.flush();
  }
}

/** A 4xx that never reached the vendor (499, the caller hanging up, is not an answer of ours). */
function isRefusal({ status, reachedVendor }: AnsweredRequest): boolean {
  return status >= 400 && status < 499 && !reachedVendor;
}

function writeSummary(logger: Logger, { client, status, reason, count, intervalMs }: RefusalSummary): void {
  const seconds = intervalMs / 1000;
  logger.warn(
    { clientId: client, status, reason, count, intervalMs },
    `client ${client ?? '(none)'}: ${count} x ${status} ${reason} in the last ${seconds} s (the first logged in full)`,
  );
}
