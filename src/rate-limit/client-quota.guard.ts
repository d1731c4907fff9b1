import { setTimeout as sleep } from 'node:timers/promises';
import { type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { ThrottlerGuard, type ThrottlerLimitDetail, type ThrottlerOptions } from '@nestjs/throttler';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import { APP_CONFIG } from '../config/config.module.js';
import { GatewayError } from '../http/gateway-error.js';
import { inRequestStage } from '../http/request-progress.js';
import { ATTR, inSpan, SPAN } from '../tracing/gateway-tracer.js';
import type { ClientQuotaSettings } from './rate-limit.settings.js';

/**
 * Per-client quota (@nestjs/throttler), keyed by the client id that ApiKeyGuard authenticated,
 * not by IP: behind a load balancer every team shares a handful of addresses. Runs after
 * ApiKeyGuard, so unauthenticated traffic never touches a quota.
 *
 * A refusal is answered CLIENT_QUOTA_REFUSAL_DELAY_MS late (never later than the quota frees): a
 * caller that ignores Retry-After and loops on its 429 over N connections then gets at most N
 * refusals per delay, instead of as many as the replica can answer, which its neighbours would
 * pay for in CPU. A caller that backs off loses nothing: it could not be served meanwhile.
 *
 * The quota is the client's, the same on every route: the guard applies the module's one
 * throttler and reads no route metadata (`@Throttle`, `@SkipThrottle`). ThrottlerGuard's own
 * canActivate reflects six metadata entries and awaits each setting on every request, which a
 * refusal storm pays for on every knock.
 */
@Injectable()
export class ClientQuotaGuard extends ThrottlerGuard {
  @Inject(APP_CONFIG) private readonly config!: { readonly clientQuota: ClientQuotaSettings };
  private quota!: ThrottlerOptions & { readonly ttl: number; readonly blockDuration: number };

  override async onModuleInit(): Promise<void> {
    await super.onModuleInit();
    const [quota, ...others] = this.throttlers;
    const { ttl, blockDuration = ttl } = quota ?? {};
    if (others.length > 0 || typeof ttl !== 'number' || typeof blockDuration !== 'number') {
      throw new Error('ClientQuotaGuard applies one quota with a fixed window: configure exactly one throttler, its ttl a number');
    }
    this.quota = { ...quota, ttl, blockDuration };
  }

  /** The quota's Redis call is the request's stage while it runs: a request overdue there says `client quota`. */
  override canActivate(context: ExecutionContext): Promise<boolean> {
    const client = context.switchToHttp().getRequest<AuthenticatedRequest>().client;
    return inRequestStage('client quota', () =>
      inSpan(SPAN.clientQuota, { attributes: { [ATTR.clientId]: client?.clientId } }, async (span) => {
        try {
          const allowed = await this.admit(context);
          span.setAttribute(ATTR.outcome, 'allowed');
          return allowed;
        } catch (error) {
          span.setAttribute(ATTR.outcome, error instanceof ClientQuotaExceeded ? 'refused' : 'failed');
          throw error;
        }
      }),
    );
  }

  /** What ThrottlerGuard.canActivate does for one throttler, its settings read once. */
  private async admit(context: ExecutionContext): Promise<boolean> {
    const { quota } = this;
    const limit = typeof quota.limit === 'function' ? quota.limit(context) : quota.limit;
    return this.handleRequest({
      context,
      throttler: quota,
      limit: typeof limit === 'number' ? limit : await limit,
      ttl: quota.ttl,
      blockDuration: quota.blockDuration,
      getTracker: this.commonOptions.getTracker!,
      generateKey: this.commonOptions.generateKey!,
    });
  }

  protected override async getTracker(request: Record<string, unknown>): Promise<string> {
    const client = (request as unknown as AuthenticatedRequest).client;
    if (!client) throw new Error('ClientQuotaGuard must run after ApiKeyGuard');
    return client.clientId;
  }

  protected override generateKey(_context: ExecutionContext, tracker: string): string {
    return tracker;
  }

  protected override async throwThrottlingException(
    _context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const refusal = new ClientQuotaExceeded(detail.limit, detail.timeToBlockExpire);
    const delayMs = Math.min(this.config.clientQuota.refusalDelayMs, detail.timeToBlockExpire * 1000);
    if (delayMs > 0) await sleep(delayMs);
    throw refusal;
  }
}

export class ClientQuotaExceeded extends GatewayError {
  constructor(limit: number, retryAfterSeconds: number) {
    super(429, `This client's quota of ${limit} requests per second is spent; retry later`, {
      retryAfterSeconds,
    });
  }

  override get refusalReason(): string {
    return 'client quota';
  }
}
