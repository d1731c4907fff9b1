import type { ExecutionContext } from '@nestjs/common';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import type { ClientQuotaSettings } from './rate-limit.settings.js';

/**
 * The quota of the request's client: CLIENT_RATE_LIMIT, or its CLIENT_RATE_LIMITS override, in
 * requests per second. Apart from the guard, which pulls in @nestjs/throttler: unit specs cannot
 * load that package (see the README's Development section).
 */
export function quotaPerSecond(config: { readonly clientQuota: ClientQuotaSettings }, context: ExecutionContext): number {
  const clientId = context.switchToHttp().getRequest<AuthenticatedRequest>().client?.clientId;
  const { perSecond, overrides } = config.clientQuota;
  return (clientId !== undefined ? overrides[clientId] : undefined) ?? perSecond;
}
