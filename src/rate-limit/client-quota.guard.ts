import { type ExecutionContext, Injectable } from '@nestjs/common';
import { ThrottlerGuard, type ThrottlerLimitDetail } from '@nestjs/throttler';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import { GatewayError } from '../http/gateway-error.js';
import { inRequestStage } from '../http/request-progress.js';

/**
 * Per-client quota (@nestjs/throttler), keyed by the client id that ApiKeyGuard authenticated,
 * not by IP: behind a load balancer every team shares a handful of addresses. Runs after
 * ApiKeyGuard, so unauthenticated traffic never touches a quota.
 */
@Injectable()
export class ClientQuotaGuard extends ThrottlerGuard {
  /** The quota's Redis call is the request's stage while it runs: a request overdue there says `client quota`. */
  override canActivate(context: ExecutionContext): Promise<boolean> {
    return inRequestStage('client quota', () => super.canActivate(context));
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
    throw new ClientQuotaExceeded(detail.limit, detail.timeToBlockExpire);
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
